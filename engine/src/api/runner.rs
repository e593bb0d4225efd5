//! The scenario this server runs: at most one at a time. `start` spawns `Lab::up` in a
//! background task and returns at once; the task records each progress event and the
//! resulting state (starting, running, failed) where `status` reads it, then holds the
//! `Running` until `stop` (or the server's shutdown) and shuts it down.
//!
//! **Invariant:** one scenario per server. Starting another while one is starting or running
//! is a 409; starting the same one again returns its status.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::model::{EventView, RunStatus, StatusView};
use super::{ApiError, ApiState};
use crate::build::BuildError;
use crate::catalog::Scenario;
use crate::metrics::Targets;
use crate::progress::{Event, Progress};
use crate::topology::{Lab, LabError, UpOptions};
use crate::workspace::CodeSource;
use crate::DatabaseChoice;

/// Progress events kept per start (a start has about a dozen).
const MAX_EVENTS: usize = 200;
/// Log lines quoted when a service dies.
const CRASH_LOG_LINES: usize = 40;

#[derive(Default)]
pub(super) struct Runner {
    slot: tokio::sync::Mutex<Option<Slot>>,
}

struct Slot {
    scenario: String,
    shared: Arc<Mutex<Shared>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// What the background task reports and the handlers read.
struct Shared {
    status: RunStatus,
    events: Vec<EventView>,
    database_url: Option<String>,
    targets: Option<Targets>,
}

impl Shared {
    fn set(shared: &Mutex<Shared>, f: impl FnOnce(&mut Shared)) {
        let mut guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    fn view(shared: &Mutex<Shared>, scenario: &str) -> StatusView {
        let guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
        StatusView {
            scenario: scenario.to_string(),
            status: guard.status.clone(),
            events: guard.events.clone(),
        }
    }
}

impl Runner {
    async fn start(&self, lab: Arc<Lab>, scenario: Scenario) -> Result<StatusView, ApiError> {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref() {
            if !current.task.is_finished() {
                if current.scenario == scenario.id {
                    return Ok(Shared::view(&current.shared, &current.scenario));
                }
                return Err(ApiError::Conflict(format!(
                    "{} is running in this lab; stop it before starting {}",
                    current.scenario, scenario.id
                )));
            }
        }
        if let Some(state) = lab.live_state(&scenario) {
            if state.owner_pid != std::process::id() && !state.services.is_empty() {
                return Err(ApiError::Conflict(format!(
                    "{} is already running in another sdlab process (pid {}); stop it first: sdlab stop {}",
                    scenario.id, state.owner_pid, scenario.id
                )));
            }
        }
        let shared = Arc::new(Mutex::new(Shared {
            status: RunStatus::Starting { step: None },
            events: Vec::new(),
            database_url: None,
            targets: None,
        }));
        let stop = CancellationToken::new();
        let (task_scenario, task_shared, task_stop) = (scenario.clone(), Arc::clone(&shared), stop.clone());
        // `Lab::up`'s future is not provably Send (see `on_own_runtime`), so the whole life of
        // the scenario runs on its own thread and runtime; the services it spawns are stopped
        // inside that runtime, before the thread ends.
        let task = tokio::spawn(async move {
            let _ = super::on_own_runtime("run the scenario", move || run(lab, task_scenario, task_shared, task_stop)).await;
        });
        let view = Shared::view(&shared, &scenario.id);
        *slot = Some(Slot {
            scenario: scenario.id,
            shared,
            stop,
            task,
        });
        Ok(view)
    }

    async fn status(&self, id: &str) -> StatusView {
        let slot = self.slot.lock().await;
        match slot.as_ref().filter(|s| s.scenario == id) {
            Some(current) => Shared::view(&current.shared, id),
            None => StatusView {
                scenario: id.to_string(),
                status: RunStatus::Stopped,
                events: Vec::new(),
            },
        }
    }

    /// Stops `id` if this server runs it, waiting until its services and database are down.
    async fn stop(&self, id: &str) -> StatusView {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|s| s.scenario == id) {
            if let Some(current) = slot.take() {
                current.stop.cancel();
                let _ = current.task.await;
                return Shared::view(&current.shared, id);
            }
        }
        StatusView {
            scenario: id.to_string(),
            status: RunStatus::Stopped,
            events: Vec::new(),
        }
    }

    pub(super) async fn stop_all(&self) {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.take() {
            current.stop.cancel();
            let _ = current.task.await;
        }
    }

    /// Whether this server is starting or running `id`.
    pub(super) async fn is_active(&self, id: &str) -> bool {
        let slot = self.slot.lock().await;
        slot.as_ref().is_some_and(|s| s.scenario == id && !s.task.is_finished())
    }

    /// The database URL of `id` while this server runs it.
    pub(super) async fn database_url(&self, id: &str) -> Option<String> {
        let slot = self.slot.lock().await;
        let current = slot.as_ref().filter(|s| s.scenario == id)?;
        let guard = current.shared.lock().unwrap_or_else(PoisonError::into_inner);
        guard.database_url.clone()
    }

    /// What the metrics collector should watch while this server runs `id`.
    pub(super) async fn targets(&self, id: &str) -> Option<Targets> {
        let slot = self.slot.lock().await;
        let current = slot.as_ref().filter(|s| s.scenario == id)?;
        let guard = current.shared.lock().unwrap_or_else(PoisonError::into_inner);
        guard.targets.clone()
    }
}

/// The background task: bring the scenario up, hold it until `stop`, shut it down.
async fn run(lab: Arc<Lab>, scenario: Scenario, shared: Arc<Mutex<Shared>>, stop: CancellationToken) {
    let sink = Arc::clone(&shared);
    let progress = Progress::new(move |event| {
        Shared::set(&sink, |s| {
            if let Event::Started(step) = &event {
                s.status = RunStatus::Starting {
                    step: Some(step.label().to_string()),
                };
            }
            if s.events.len() < MAX_EVENTS {
                s.events.push(EventView::from(&event));
            }
        })
    });
    let opts = UpOptions {
        code: CodeSource::Learner,
        database: DatabaseChoice::Learner,
        progress,
    };
    // Dropping `up` midway is safe: every server and service it started has a guard that
    // stops it on drop.
    let up = tokio::select! {
        up = lab.up(&scenario, opts) => up,
        _ = stop.cancelled() => {
            Shared::set(&shared, |s| s.status = RunStatus::Stopped);
            return;
        }
    };
    let mut running = match up {
        Ok(running) => running,
        Err(e) => {
            Shared::set(&shared, |s| s.status = failed(&e));
            return;
        }
    };
    let urls: Vec<String> = (0..running.services.len()).filter_map(|i| running.service_url(i)).collect();
    Shared::set(&shared, |s| {
        s.status = RunStatus::Running {
            url: urls.first().cloned().unwrap_or_default(),
            urls: urls.clone(),
        };
        s.database_url = running.database_url();
        s.targets = Some(running.targets());
    });
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    'watch: loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        for svc in &mut running.services {
            if let Some(exit) = svc.exit_status() {
                let error = format!(
                    "the service (instance {}) exited ({exit}). Its last log lines:\n{}",
                    svc.instance,
                    svc.logs(CRASH_LOG_LINES)
                );
                Shared::set(&shared, |s| {
                    s.status = RunStatus::Failed {
                        error,
                        diagnostics: None,
                    }
                });
                break 'watch;
            }
        }
    }
    running.shutdown().await;
    Shared::set(&shared, |s| {
        if matches!(s.status, RunStatus::Running { .. }) {
            s.status = RunStatus::Stopped;
        }
        s.database_url = None;
        s.targets = None;
    });
}

/// A failed start; the compiler's output goes to `diagnostics` so the editor can show it.
fn failed(e: &LabError) -> RunStatus {
    match e {
        LabError::Build(BuildError::Compile { package, diagnostics }) => RunStatus::Failed {
            error: format!("{package} does not compile"),
            diagnostics: Some(diagnostics.clone()),
        },
        other => RunStatus::Failed {
            error: other.to_string(),
            diagnostics: None,
        },
    }
}

pub(super) async fn start(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<StatusView>), ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let view = state.runner.start(Arc::clone(&state.lab), scenario).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

pub(super) async fn stop(State(state): State<ApiState>, UrlPath(id): UrlPath<String>) -> Result<Json<StatusView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(state.runner.stop(&scenario.id).await))
}

pub(super) async fn status(State(state): State<ApiState>, UrlPath(id): UrlPath<String>) -> Result<Json<StatusView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(state.runner.status(&scenario.id).await))
}
