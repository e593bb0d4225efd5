//! The lab's HTTP API: an axum `Router` over a shared `Lab`, used by the web UI (served by
//! `sdlab serve`) and by the desktop shell. JSON in and out; every error is
//! `{ "error": "..." }` with a status that says what kind of error it is.
//!
//! # Layout
//! - `guard.rs`: the security layer every request passes first: Host (DNS rebinding),
//!   Origin (cross-site requests), then the per-launch token on `/api`.
//! - `model.rs`: the UI-facing types (the only ones here that derive `Serialize`), converted
//!   from engine types.
//! - `error.rs`: `ApiError` and its status codes.
//! - `scenarios.rs`: catalog, guide, reset, log tails and the log stream.
//! - `files.rs`: the learner's service folder: tree, read, atomic save, path confinement.
//! - `runner/`: the one scenario this server runs (`Lab::up` in a background task,
//!   `runner/task.rs`), its status and progress events.
//! - `jobs.rs`: the load run or check it runs on request, and recording it (`crate::learner`).
//! - `console.rs`: the SQL and Redis consoles, read-only unless a write is asked for.
//! - `learn.rs`: hints one at a time, the solution (confirmation before the first check) and
//!   the run history, over `crate::learner` (the rules the CLI follows too); guide questions.
//! - `stream.rs`: the 1 Hz metrics stream (server-sent events).
//! - `doctor` (here): what the machine lacks, from `crate::doctor`.
//! - `watch.rs`: rebuild on save from any editor (the learner's `work/` folder watched).
//! - `ui.rs`: the built web UI (`ui/dist`) at `/`, or a page saying how to build it.
//!
//! Server-sent event streams (metrics, logs) take the token as `?token=`, because
//! EventSource cannot send headers.
//!
//! **Invariant:** the server listens on 127.0.0.1 only, and no handler runs before `guard`
//! has accepted the request's Host, Origin and token.
//! **Invariant:** file handlers only touch paths that `files::confine` resolved inside the
//! learner's service folder.

mod console;
mod error;
mod files;
mod guard;
mod jobs;
mod learn;
mod lifecycle;
mod model;
mod runner;
mod scenarios;
mod stream;
mod ui;
mod watch;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use rand::RngCore;
use tokio_util::sync::CancellationToken;

use crate::topology::Lab;

pub use error::ApiError;
pub use learn::{questions, FIGURES};
pub use model::*;

/// The largest file the editor may save, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// The shortest token `ApiState` accepts (a per-launch token is 64 hex digits).
const MIN_TOKEN_LEN: usize = 16;

/// What every handler shares: the lab, the security settings and the running scenario.
#[derive(Clone)]
pub struct ApiState {
    lab: Arc<Lab>,
    token: Arc<str>,
    port: u16,
    extra_origins: Arc<Vec<String>>,
    extra_hosts: Arc<Vec<String>>,
    runner: Arc<runner::Runner>,
    shutdown: CancellationToken,
    /// The built web UI (`ui/dist`), served at `/`.
    ui_dir: Arc<std::path::PathBuf>,
}

impl ApiState {
    /// The state for a server on `127.0.0.1:port` that requires `token` on every `/api` call.
    pub fn new(lab: Lab, token: impl Into<String>, port: u16) -> Result<ApiState, ApiError> {
        let token: String = token.into();
        if token.len() < MIN_TOKEN_LEN {
            return Err(ApiError::Config(format!(
                "the API token must be at least {MIN_TOKEN_LEN} characters (use api::new_token)"
            )));
        }
        Ok(ApiState {
            token: token.into(),
            port,
            extra_origins: Arc::new(Vec::new()),
            extra_hosts: Arc::new(Vec::new()),
            runner: Arc::new(runner::Runner::default()),
            shutdown: CancellationToken::new(),
            ui_dir: Arc::new(ui::default_dir(&lab.sources.root)),
            lab: Arc::new(lab),
        })
    }

    /// Also accepts requests from `origin` (e.g. the desktop shell's `tauri://localhost`).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> ApiState {
        Arc::make_mut(&mut self.extra_origins).push(origin.into());
        self
    }

    /// Also accepts requests whose Host is `host` (exactly, port included): for a proxy
    /// that forwards the lab under its own name, such as a Codespaces forwarded port. Pair it
    /// with `allow_origin` for the page that proxy serves.
    pub fn allow_host(mut self, host: impl Into<String>) -> ApiState {
        Arc::make_mut(&mut self.extra_hosts).push(host.into());
        self
    }

    /// Serves the web UI from `dir` (a built `ui/dist`) instead of the default.
    pub fn ui_dir(mut self, dir: impl Into<std::path::PathBuf>) -> ApiState {
        self.ui_dir = Arc::new(dir.into());
        self
    }

    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Stops the scenario this server started, if any, and ends the metrics streams.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.runner.stop_all().await;
    }
}

/// What this machine lacks for the lab (cargo, PostgreSQL, nginx, ...), with how to get it:
/// the UI shows the missing ones as a banner at launch.
async fn doctor(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> axum::Json<Vec<crate::doctor::Finding>> {
    let lab = state.lab.clone();
    let findings =
        tokio::task::spawn_blocking(move || crate::doctor::check(&lab.home, &lab.sources))
            .await
            .unwrap_or_default();
    axum::Json(findings)
}

/// A random per-launch token: 32 bytes from the OS-seeded RNG, as 64 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The API's routes behind the security layer. Tests call it with `oneshot`.
pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/api/doctor", get(doctor))
        .route("/api/scenarios", get(scenarios::list))
        .route("/api/scenarios/{id}", get(scenarios::detail))
        .route("/api/scenarios/{id}/files", get(files::tree))
        .route(
            "/api/scenarios/{id}/files/{*path}",
            get(files::read)
                .put(files::save)
                .layer(DefaultBodyLimit::max(MAX_FILE_BYTES)),
        )
        .route("/api/scenarios/{id}/start", post(lifecycle::start))
        .route("/api/scenarios/{id}/stop", post(lifecycle::stop))
        .route("/api/scenarios/{id}/restart", post(lifecycle::restart))
        .route("/api/scenarios/{id}/status", get(lifecycle::status))
        .route("/api/scenarios/{id}/load", post(jobs::start_load))
        .route("/api/scenarios/{id}/check", post(jobs::start_check))
        .route("/api/scenarios/{id}/job", get(jobs::job))
        .route("/api/scenarios/{id}/job/cancel", post(jobs::cancel_job))
        .route("/api/scenarios/{id}/reset", post(scenarios::reset))
        .route("/api/scenarios/{id}/sql", post(console::sql))
        .route("/api/scenarios/{id}/redis", post(console::redis))
        .route("/api/scenarios/{id}/replica", post(console::replica))
        .route("/api/scenarios/{id}/logs", get(scenarios::logs))
        .route(
            "/api/scenarios/{id}/logs/stream",
            get(scenarios::logs_stream),
        )
        .route("/api/scenarios/{id}/hints", get(learn::hints))
        .route("/api/scenarios/{id}/hints/next", post(learn::next_hint))
        .route("/api/scenarios/{id}/solution", post(learn::solution))
        .route("/api/scenarios/{id}/metrics/stream", get(stream::metrics))
        .route("/api/scenarios/{id}/history", get(learn::history))
        .route(
            "/api/scenarios/{id}/answers/{question}",
            axum::routing::put(learn::answer),
        )
        .route(
            "/api/scenarios/{id}/drafts/{*path}",
            axum::routing::put(files::save_draft)
                .delete(files::discard_draft)
                .layer(DefaultBodyLimit::max(MAX_FILE_BYTES)),
        );
    Router::new()
        .merge(api)
        // Anything else is the web UI's assets, or an unknown API endpoint.
        .fallback(ui::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then stops any scenario it
/// started. The listener should be bound to 127.0.0.1 (see `sdlab serve`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    lab: Lab,
    token: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let addr = listener.local_addr().map_err(|source| ApiError::Io {
        what: "read the listener's address".to_string(),
        source,
    })?;
    if !addr.ip().is_loopback() {
        return Err(ApiError::Config(format!(
            "the API listens on loopback only; {addr} is not a loopback address"
        )));
    }
    serve_with(listener, ApiState::new(lab, token, addr.port())?, shutdown).await
}

/// `serve` with a prepared state (extra hosts or origins for the desktop shell or a proxy).
/// The state's port must be the listener's.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let addr = listener.local_addr().map_err(|source| ApiError::Io {
        what: "read the listener's address".to_string(),
        source,
    })?;
    if !addr.ip().is_loopback() || addr.port() != state.port {
        return Err(ApiError::Config(format!(
            "the API listens on loopback only, on the port its state names ({}); got {addr}",
            state.port
        )));
    }
    let app = router(state.clone());
    // Edits saved outside the page (VS Code, vim) rebuild and restart the running scenario.
    watch::spawn(state.clone());
    let streams = state.shutdown.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Server-sent event streams never end by themselves; end them so the graceful
            // shutdown does not wait for the browser to close them.
            streams.cancel();
        })
        .await;
    state.shutdown().await;
    served.map_err(|source| ApiError::Io {
        what: "serve the API".to_string(),
        source,
    })
}

/// Runs the future `make` returns on a blocking thread with its own current-thread runtime.
///
/// For engine calls that reach PostgreSQL through sqlx (`Lab::up`, `Lab::database`): the
/// compiler cannot prove their futures `Send` (sqlx's `Executor` is implemented per lifetime,
/// "not general enough"), so they cannot be `tokio::spawn`ed or awaited in a handler. Only the
/// closure crosses threads here; the future never does. Whatever the future starts (child
/// processes, servers) must be stopped before it returns, because its runtime ends with it.
async fn on_own_runtime<F, Fut, T>(what: &str, make: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok::<_, std::io::Error>(runtime.block_on(make()))
    })
    .await;
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(ApiError::Io {
            what: format!("start a runtime to {what}"),
            source,
        }),
        Err(e) => Err(ApiError::Io {
            what: format!("{what} (the task ended abnormally)"),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}
