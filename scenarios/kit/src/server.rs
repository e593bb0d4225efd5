//! Serving: wrap a service's router with the shared routes and middleware, bind, and shut
//! down gracefully.

use crate::config::Config;
use crate::error::KitError;
use crate::metrics::HttpMetrics;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// How [`serve_with`] and [`router_with`] serve a service; [`serve`] uses the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeOptions {
    /// Per-route latency histograms (the default) or one for the whole service.
    pub http_metrics: HttpMetrics,
}

/// The service's `app` plus `/healthz`, `/metrics` and the HTTP metrics middleware.
/// [`serve`] calls it; tests call it too, to `oneshot` requests without a socket.
pub fn router(app: Router, config: &Config) -> Router {
    router_with(app, config, ServeOptions::default())
}

/// [`router`] with the HTTP metrics `options` asks for.
pub fn router_with(app: Router, config: &Config, options: ServeOptions) -> Router {
    crate::metrics::handle();
    crate::metrics::set_service_info(&config.instance_id);
    // The layer goes on `app` alone, before the kit routes are merged, so probes and
    // scrapes are not counted as traffic.
    app.layer(axum::middleware::from_fn_with_state(
        options.http_metrics,
        crate::metrics::track_http,
    ))
    .route("/healthz", get(healthz))
    .route("/metrics", get(crate::metrics::render))
}

/// Liveness only: the process answers. It does not touch the database, so a slow database
/// shows in the service's latency, not as the lab thinking the process died.
async fn healthz() -> &'static str {
    "ok"
}

/// Serves `app` (see [`router`]) on 127.0.0.1:PORT until SIGTERM or Ctrl-C, then lets
/// in-flight requests finish.
pub async fn serve(app: Router, config: &Config) -> Result<(), KitError> {
    serve_with(app, config, ServeOptions::default()).await
}

/// [`serve`] with the HTTP metrics `options` asks for (t1-07's service starts with one
/// latency histogram for all routes).
pub async fn serve_with(
    app: Router,
    config: &Config,
    options: ServeOptions,
) -> Result<(), KitError> {
    // Loopback only: the lab and its load generator run on the same machine, and a
    // deliberately broken service should not be reachable from the network.
    let addr = format!("127.0.0.1:{}", config.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| KitError::Bind {
            addr: addr.clone(),
            source,
        })?;
    serve_on(
        listener,
        router_with(app, config, options),
        shutdown_signal(),
    )
    .await
}

/// Serves an already-wrapped router on a bound listener until `shutdown` completes. Tests
/// bind port 0 and pass their own shutdown future.
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), KitError> {
    let addr = listener.local_addr().map_err(KitError::Serve)?;
    tracing::info!("listening on http://{addr}");
    let upkeep = tokio::spawn(async {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            crate::metrics::run_upkeep();
        }
    });
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    tracing::info!("stopped");
    result.map_err(KitError::Serve)
}

/// Completes on SIGTERM (how the lab stops an instance) or Ctrl-C (a learner's terminal).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {err}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::warn!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
