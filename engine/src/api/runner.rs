//! The scenario this server runs: at most one at a time. `start` spawns `Lab::up` in a
//! background task and returns at once; the task records each progress event and the
//! resulting state (starting, running, failed) where `status` reads it, then holds the
//! `Running` until `stop` (or the server's shutdown) and shuts it down.
//!
//! Load runs and checks are handed to that task (`JobRequest`), which owns the `Running`
//! the check needs; `jobs.rs` runs them, and their per-second stats and results land in the
//! job `GET .../job` reads.
//!
//! **Invariant:** one scenario per server. Starting another while one is starting or running
//! is a 409; starting the same one again returns its status.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::model::{EventView, JobView, RunStatus, StatusView};
use super::{ApiError, ApiState};
use crate::build::BuildError;
use crate::catalog::Scenario;
use crate::load::LoadPlan;
use crate::metrics::Targets;
use crate::process::RunState;
use crate::progress::{Event, Progress, Step};
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
    jobs: mpsc::UnboundedSender<JobRequest>,
}

/// Work for the running scenario's task: it owns the `Running` the check needs.
pub(super) enum JobRequest {
    Load(LoadPlan),
    Check,
    /// Ends the load run (or check) under way.
    Cancel,
}

/// What the background task reports and the handlers read.
pub(super) struct Shared {
    status: RunStatus,
    events: Vec<EventView>,
    database_url: Option<String>,
    targets: Option<Targets>,
    /// Where load goes: nginx when the topology has it, else every instance.
    load_targets: Vec<String>,
    /// The last load run or check.
    pub(super) job: Option<JobView>,
}

impl Shared {
    pub(super) fn set(shared: &Mutex<Shared>, f: impl FnOnce(&mut Shared)) {
        let mut guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    fn view(shared: &Mutex<Shared>, scenario: &str) -> StatusView {
        let guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
        StatusView {
            scenario: scenario.to_string(),
            status: guard.status.clone(),
            events: guard.events.clone(),
            owner_pid: None,
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
            load_targets: Vec::new(),
            job: None,
        }));
        let stop = CancellationToken::new();
        let (jobs, job_requests) = mpsc::unbounded_channel();
        let (task_scenario, task_shared, task_stop) =
            (scenario.clone(), Arc::clone(&shared), stop.clone());
        // `Lab::up`'s future is not provably Send (see `on_own_runtime`), so the whole life of
        // the scenario runs on its own thread and runtime; the services it spawns are stopped
        // inside that runtime, before the thread ends.
        let task = tokio::spawn(async move {
            let _ = super::on_own_runtime("run the scenario", move || {
                run(lab, task_scenario, task_shared, task_stop, job_requests)
            })
            .await;
        });
        let view = Shared::view(&shared, &scenario.id);
        *slot = Some(Slot {
            scenario: scenario.id,
            shared,
            stop,
            task,
            jobs,
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
                owner_pid: None,
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
            owner_pid: None,
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
        slot.as_ref()
            .is_some_and(|s| s.scenario == id && !s.task.is_finished())
    }

    /// The database URL of `id` while this server runs it.
    pub(super) async fn database_url(&self, id: &str) -> Option<String> {
        let slot = self.slot.lock().await;
        let current = slot.as_ref().filter(|s| s.scenario == id)?;
        let guard = current
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        guard.database_url.clone()
    }

    /// Hands a load run or a check to the running scenario's task. One at a time: a check
    /// under someone else's load would measure both.
    pub(super) async fn submit(
        &self,
        id: &str,
        request: JobRequest,
        kind: &'static str,
    ) -> Result<JobView, ApiError> {
        let slot = self.slot.lock().await;
        let current = slot
            .as_ref()
            .filter(|s| s.scenario == id && !s.task.is_finished())
            .ok_or_else(|| {
                ApiError::Conflict(format!("{id} is not running here; start it first"))
            })?;
        let view = {
            let mut guard = current
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !matches!(guard.status, RunStatus::Running { .. }) {
                return Err(ApiError::Conflict(format!(
                    "{id} is not running yet; wait until its status is running"
                )));
            }
            if let Some(job) = guard.job.as_ref().filter(|j| j.state == "running") {
                return Err(ApiError::Conflict(format!(
                    "a {} is under way on {id}; wait for it or cancel it first",
                    job.kind
                )));
            }
            let view = JobView {
                kind,
                state: "running",
                seconds: Vec::new(),
                summary: None,
                check: None,
                error: None,
            };
            guard.job = Some(view.clone());
            view
        };
        current
            .jobs
            .send(request)
            .map_err(|_| ApiError::Conflict(format!("{id} is stopping")))?;
        Ok(view)
    }

    pub(super) async fn cancel_job(&self, id: &str) {
        let slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref().filter(|s| s.scenario == id) {
            let _ = current.jobs.send(JobRequest::Cancel);
        }
    }

    pub(super) async fn job(&self, id: &str) -> Option<JobView> {
        let slot = self.slot.lock().await;
        let current = slot.as_ref().filter(|s| s.scenario == id)?;
        let guard = current
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        guard.job.clone()
    }

    /// Where load goes while `id` runs here (`Running::load_targets`).
    pub(super) async fn load_targets(&self, id: &str) -> Option<Vec<String>> {
        let slot = self.slot.lock().await;
        let current = slot.as_ref().filter(|s| s.scenario == id)?;
        let guard = current
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &guard.status {
            RunStatus::Running { .. } if !guard.load_targets.is_empty() => {
                Some(guard.load_targets.clone())
            }
            _ => None,
        }
    }

    /// What the metrics collector should watch while this server runs `id`.
    pub(super) async fn targets(&self, id: &str) -> Option<Targets> {
        let slot = self.slot.lock().await;
        let current = slot.as_ref().filter(|s| s.scenario == id)?;
        let guard = current
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        guard.targets.clone()
    }
}

/// The background task: bring the scenario up, hold it until `stop`, shut it down.
async fn run(
    lab: Arc<Lab>,
    scenario: Scenario,
    shared: Arc<Mutex<Shared>>,
    stop: CancellationToken,
    mut job_requests: mpsc::UnboundedReceiver<JobRequest>,
) {
    let sink = Arc::clone(&shared);
    // Steps can overlap (the seed runs while the service builds): the status names them all.
    let active = Mutex::new(Vec::<Step>::new());
    let progress = Progress::new(move |event| {
        let mut active = active.lock().unwrap_or_else(PoisonError::into_inner);
        match &event {
            Event::Started(step) => active.push(*step),
            Event::Finished { step, .. } | Event::Failed { step, .. } => {
                active.retain(|s| s != step)
            }
            Event::Info(_) => {}
        }
        Shared::set(&sink, |s| {
            if matches!(s.status, RunStatus::Starting { .. }) && !active.is_empty() {
                let labels: Vec<&str> = active.iter().map(|step| step.label()).collect();
                s.status = RunStatus::Starting {
                    step: Some(labels.join(" + ")),
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
            forget_own_state(&lab, &scenario);
            Shared::set(&shared, |s| s.status = RunStatus::Stopped);
            return;
        }
    };
    let running = match up {
        Ok(running) => running,
        Err(e) => {
            forget_own_state(&lab, &scenario);
            Shared::set(&shared, |s| s.status = failed(&e));
            return;
        }
    };
    let urls: Vec<String> = (0..running.services.len())
        .filter_map(|i| running.service_url(i))
        .collect();
    let entry = running.nginx.as_ref().map(|n| n.url());
    let cpu_limit = running.cpu_limiter.as_ref().map(|l| l.describe());
    Shared::set(&shared, |s| {
        s.status = RunStatus::Running {
            url: urls.first().cloned().unwrap_or_default(),
            urls: urls.clone(),
            entry: entry
                .clone()
                .or_else(|| urls.first().cloned())
                .unwrap_or_default(),
            cpu_limit: cpu_limit.clone(),
        };
        s.database_url = running.database_url();
        s.targets = Some(running.targets());
        s.load_targets = running.load_targets();
    });
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    // The load run or check under way: it borrows `running`, so it is polled here rather
    // than spawned.
    let mut job: Option<Pin<Box<dyn Future<Output = ()> + '_>>> = None;
    let mut job_cancel = CancellationToken::new();
    enum Wake {
        Stop,
        Request(Option<JobRequest>),
        JobDone,
        Tick,
    }
    loop {
        let wake = tokio::select! {
            _ = stop.cancelled() => Wake::Stop,
            request = job_requests.recv() => Wake::Request(request),
            _ = async {
                match job.as_mut() {
                    Some(j) => j.await,
                    None => std::future::pending().await,
                }
            } => Wake::JobDone,
            _ = ticker.tick() => Wake::Tick,
        };
        match wake {
            Wake::Stop | Wake::Request(None) => break,
            Wake::Request(Some(JobRequest::Cancel)) => job_cancel.cancel(),
            Wake::Request(Some(request)) => {
                job_cancel = CancellationToken::new();
                job = Some(Box::pin(super::jobs::run_job(
                    &lab,
                    &running,
                    request,
                    Arc::clone(&shared),
                    job_cancel.clone(),
                )));
            }
            Wake::JobDone => job = None,
            Wake::Tick => {
                // `alive` reads /proc, so a job may hold `running` meanwhile.
                if let Some(svc) = running
                    .services
                    .iter()
                    .find(|s| !crate::process::alive(s.pid))
                {
                    let error = format!(
                        "the service (instance {}) exited. Its last log lines:\n{}",
                        svc.instance,
                        svc.logs(CRASH_LOG_LINES)
                    );
                    Shared::set(&shared, |s| {
                        s.status = RunStatus::Failed {
                            error,
                            diagnostics: None,
                        }
                    });
                    break;
                }
            }
        }
    }
    job_cancel.cancel();
    drop(job);
    Shared::set(&shared, |s| {
        if let Some(j) = s.job.as_mut().filter(|j| j.state == "running") {
            j.state = "failed";
            j.error = Some("the scenario stopped before it finished".to_string());
        }
    });
    running.shutdown().await;
    Shared::set(&shared, |s| {
        if matches!(s.status, RunStatus::Running { .. }) {
            s.status = RunStatus::Stopped;
        }
        s.database_url = None;
        s.targets = None;
        s.load_targets.clear();
    });
}

/// Removes the run state a failed or abandoned `Lab::up` left behind in this process's name.
///
/// `Lab::up` records the PostgreSQL it started as soon as it is up; when a later step fails,
/// the server is stopped on drop but the record stays. A CLI process exits right after, which
/// makes the record stale; this server lives on, so the record would claim a live lab (ours)
/// with a dead PostgreSQL, and the next start or `sdlab sql` would try to attach to it.
fn forget_own_state(lab: &Lab, scenario: &Scenario) {
    let path = RunState::path(&lab.home.run_dir(), &scenario.id);
    if RunState::read(&path).is_some_and(|state| state.owner_pid == std::process::id()) {
        let _ = std::fs::remove_file(&path);
    }
}

/// A failed start; the compiler's output goes to `diagnostics` so the editor can show it.
fn failed(e: &LabError) -> RunStatus {
    match e {
        LabError::Build(BuildError::Compile {
            package,
            diagnostics,
        }) => RunStatus::Failed {
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

pub(super) async fn stop(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<StatusView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(state.runner.stop(&scenario.id).await))
}

pub(super) async fn status(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<StatusView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let mut view = state.runner.status(&scenario.id).await;
    if view.status == RunStatus::Stopped {
        if let Some((pid, status)) = elsewhere(&state.lab, scenario) {
            view.status = status;
            view.owner_pid = Some(pid);
        }
    }
    Ok(Json(view))
}

/// The lab another sdlab process runs for `scenario` (a terminal's `sdlab start`), read from
/// its run state file: starting while only its database is up, failed when a service it lists
/// has exited, else running.
fn elsewhere(lab: &Lab, scenario: &Scenario) -> Option<(u32, RunStatus)> {
    let state = lab
        .live_state(scenario)
        .filter(|s| s.owner_pid != std::process::id())?;
    let pid = state.owner_pid;
    let dead = state.services.iter().find(|s| {
        !crate::process::alive(s.pid) || crate::process::start_time(s.pid) != s.start_time
    });
    let status = if state.services.is_empty() {
        RunStatus::Starting {
            step: Some("database up; no service yet".to_string()),
        }
    } else if let Some(svc) = dead {
        RunStatus::Failed {
            error: format!(
                "the service (instance {}) exited in the lab sdlab pid {pid} runs; its log is in the Logs tab",
                svc.instance
            ),
            diagnostics: None,
        }
    } else {
        let urls: Vec<String> = state
            .services
            .iter()
            .map(|s| format!("http://127.0.0.1:{}", s.port))
            .collect();
        RunStatus::Running {
            url: urls[0].clone(),
            entry: state.nginx_url.clone().unwrap_or_else(|| urls[0].clone()),
            urls,
            cpu_limit: None,
        }
    };
    Some((pid, status))
}

/// `POST .../restart`: stop, then start again: how a saved edit reaches the running service
/// (rebuild, migrations, restart). 202 with the new start's status.
pub(super) async fn restart(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<StatusView>), ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    state.runner.stop(&scenario.id).await;
    let view = state.runner.start(Arc::clone(&state.lab), scenario).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{start_time, ServiceState};
    use crate::{LabHome, Sources};
    use std::process::Command;

    #[test]
    fn a_lab_another_process_owns_is_read_from_its_run_state() {
        let home = tempfile::tempdir().unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let lab = Lab::new(LabHome::at(home.path()), Sources::at(repo)).unwrap();
        let scenario = lab.catalog.get("t1-01").unwrap().clone();
        assert_eq!(elsewhere(&lab, &scenario), None, "nothing runs it");
        // Stand-ins for a terminal's `sdlab start` and the service it started.
        let mut owner = Command::new("sleep").arg("60").spawn().unwrap();
        let mut service = Command::new("sleep").arg("60").spawn().unwrap();
        let path = RunState::path(&lab.home.run_dir(), &scenario.id);
        let mut state = RunState {
            scenario: scenario.id.clone(),
            owner_pid: owner.id(),
            owner_start_time: start_time(owner.id()),
            postgres_url: None,
            postmaster_pid: None,
            services: Vec::new(),
            nginx_url: None,
        };
        state.write(&path).unwrap();
        let starting = elsewhere(&lab, &scenario);
        assert!(
            matches!(starting, Some((pid, RunStatus::Starting { .. })) if pid == owner.id()),
            "database only: {starting:?}"
        );
        state.services = vec![ServiceState {
            pid: service.id(),
            start_time: start_time(service.id()),
            port: 45999,
            instance: 1,
        }];
        state.write(&path).unwrap();
        let running = elsewhere(&lab, &scenario);
        assert!(
            matches!(&running, Some((_, RunStatus::Running { entry, urls, .. }))
                if entry == "http://127.0.0.1:45999" && urls.len() == 1),
            "{running:?}"
        );
        service.kill().unwrap();
        service.wait().unwrap();
        let crashed = elsewhere(&lab, &scenario);
        assert!(
            matches!(&crashed, Some((_, RunStatus::Failed { error, .. })) if error.contains("instance 1) exited")),
            "{crashed:?}"
        );
        owner.kill().unwrap();
        owner.wait().unwrap();
        assert_eq!(elsewhere(&lab, &scenario), None, "its owner is gone");
        // This server's own run state is the runner's business, not "elsewhere".
        state.owner_pid = std::process::id();
        state.owner_start_time = start_time(std::process::id());
        state.write(&path).unwrap();
        assert_eq!(elsewhere(&lab, &scenario), None, "owned by this process");
    }
}
