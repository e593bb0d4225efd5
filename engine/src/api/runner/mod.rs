//! The scenario this server runs: at most one at a time. `start` spawns `Lab::up` in a
//! background task and returns at once; the task records each progress event and the
//! resulting state (starting, running, failed) where `status` reads it, then holds the
//! `Running` until `stop` (or the server's shutdown) and shuts it down.
//!
//! Load runs are handed to that task (`JobRequest`); a check runs beside it, never on it: its
//! own lab (the learner's code on a fresh copy of the seeded database, its own instances) on
//! its own runtime (`jobs::check_job`), attached to the playground's PostgreSQL when that
//! runs, so the playground is left untouched. Both land their per-second stats and results
//! in the one job `GET .../job` reads (`JobSlot`). The task itself is `task.rs`.
//!
//! **Invariant:** one scenario per server. Starting another while one is starting or running
//! is a 409; starting the same one again returns its status. One job at a time: a load run
//! or check under way refuses another. A check is refused while another scenario runs or its
//! own is starting; a start is refused while a check runs (the check's lab may own the
//! PostgreSQL the start would attach to), and a stop cancels the scenario's check first.

mod task;

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::model::{EventView, JobView, RunStatus, StatusView};
use super::ApiError;
use crate::catalog::Scenario;
use crate::load::LoadPlan;
use crate::metrics::{Sample, Targets};
use crate::topology::Lab;

pub(super) use task::forget_own_state;

#[derive(Default)]
pub(super) struct Runner {
    slot: tokio::sync::Mutex<Option<Slot>>,
    /// The last load run or check, kept after its scenario stops so its result stays readable.
    job: JobCell,
    /// The check under way (or shutting its lab down): awaited before anything that could
    /// share its PostgreSQL starts. Locked after `slot`, never before.
    check_task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

/// The last load run or check, and how to cancel it.
pub(super) struct JobSlot {
    scenario: String,
    view: JobView,
    cancel: CancellationToken,
}

pub(super) type JobCell = Arc<Mutex<Option<JobSlot>>>;

/// Updates the job's view (nothing when there is none).
pub(super) fn set_job(cell: &Mutex<Option<JobSlot>>, f: impl FnOnce(&mut JobView)) {
    let mut guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(job) = guard.as_mut() {
        f(&mut job.view)
    }
}

/// The view of the job under way or last finished.
pub(super) fn job_view(cell: &Mutex<Option<JobSlot>>) -> Option<JobView> {
    let guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
    guard.as_ref().map(|j| j.view.clone())
}

/// The running job of `kind` on `id`, if there is one.
fn running_job(cell: &Mutex<Option<JobSlot>>, id: &str, kind: &str) -> Option<CancellationToken> {
    let guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
    guard
        .as_ref()
        .filter(|j| j.scenario == id && j.view.kind == kind && j.view.state == "running")
        .map(|j| j.cancel.clone())
}

struct Slot {
    scenario: String,
    shared: Arc<Mutex<Shared>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    jobs: mpsc::UnboundedSender<JobRequest>,
}

/// Work for the running scenario's task: a load run on the playground, until its token is
/// cancelled or it ends.
pub(super) enum JobRequest {
    Load(LoadPlan, CancellationToken),
}

/// What the background task reports and the handlers read.
pub(super) struct Shared {
    status: RunStatus,
    events: Vec<EventView>,
    database_url: Option<String>,
    targets: Option<Targets>,
    /// Where load goes: nginx when the topology has it, else every instance.
    load_targets: Vec<String>,
    /// The running lab's newest second, from the one collector this server runs for it:
    /// every metrics stream and the Prometheus exporter read it (one probe session on
    /// PostgreSQL however many windows watch).
    samples: Option<watch::Receiver<Option<Sample>>>,
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
    pub(super) async fn start(
        &self,
        lab: Arc<Lab>,
        scenario: Scenario,
    ) -> Result<StatusView, ApiError> {
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
        let checking = {
            let guard = self.job.lock().unwrap_or_else(PoisonError::into_inner);
            guard
                .as_ref()
                .filter(|j| j.view.kind == "check" && j.view.state == "running")
                .map(|j| j.scenario.clone())
        };
        if let Some(checked) = checking {
            return Err(ApiError::Conflict(format!(
                "a check is under way on {checked}; wait for it or cancel it first"
            )));
        }
        // A check that just finished may still be stopping its lab, whose PostgreSQL this
        // start would otherwise attach to.
        if let Some(task) = self.check_task.lock().await.take() {
            let _ = task.await;
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
            samples: None,
            load_targets: Vec::new(),
        }));
        let stop = CancellationToken::new();
        let (jobs, job_requests) = mpsc::unbounded_channel();
        let (task_scenario, task_shared, task_stop, task_job) = (
            scenario.clone(),
            Arc::clone(&shared),
            stop.clone(),
            Arc::clone(&self.job),
        );
        // `Lab::up`'s future is not provably Send (see `on_own_runtime`), so the whole life of
        // the scenario runs on its own thread and runtime; the services it spawns are stopped
        // inside that runtime, before the thread ends.
        let task = tokio::spawn(async move {
            let _ = super::on_own_runtime("run the scenario", move || {
                task::run(
                    lab,
                    task_scenario,
                    task_shared,
                    task_stop,
                    job_requests,
                    task_job,
                )
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

    pub(super) async fn status(&self, id: &str) -> StatusView {
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
    /// A check of `id` under way is cancelled first: its lab may use the same PostgreSQL.
    pub(super) async fn stop(&self, id: &str) -> StatusView {
        let mut slot = self.slot.lock().await;
        self.cancel_check(id).await;
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
        if let Some(token) = {
            let guard = self.job.lock().unwrap_or_else(PoisonError::into_inner);
            guard.as_ref().map(|j| j.cancel.clone())
        } {
            token.cancel();
        }
        if let Some(task) = self.check_task.lock().await.take() {
            let _ = task.await;
        }
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
        self.read(id, |s| s.database_url.clone()).await
    }

    /// Makes a new job of `kind` on `id` the current one, unless one is under way.
    fn claim_job(
        &self,
        id: &str,
        kind: &'static str,
    ) -> Result<(JobView, CancellationToken), ApiError> {
        let mut guard = self.job.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(job) = guard.as_ref().filter(|j| j.view.state == "running") {
            return Err(ApiError::Conflict(format!(
                "a {} is under way on {}; wait for it or cancel it first",
                job.view.kind, job.scenario
            )));
        }
        let view = JobView {
            kind,
            state: "running",
            seconds: Vec::new(),
            summary: None,
            check: None,
            error: None,
            step: None,
        };
        let cancel = CancellationToken::new();
        *guard = Some(JobSlot {
            scenario: id.to_string(),
            view: view.clone(),
            cancel: cancel.clone(),
        });
        Ok((view, cancel))
    }

    /// Hands a load run to the running scenario's task. One job at a time: a check under
    /// someone else's load would measure both.
    pub(super) async fn submit_load(&self, id: &str, plan: LoadPlan) -> Result<JobView, ApiError> {
        let slot = self.slot.lock().await;
        let current = slot
            .as_ref()
            .filter(|s| s.scenario == id && !s.task.is_finished())
            .ok_or_else(|| {
                ApiError::Conflict(format!("{id} is not running here; start it first"))
            })?;
        let running = {
            let guard = current
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            matches!(guard.status, RunStatus::Running { .. })
        };
        if !running {
            return Err(ApiError::Conflict(format!(
                "{id} is not running yet; wait until its status is running"
            )));
        }
        let (view, cancel) = self.claim_job(id, "load")?;
        if current.jobs.send(JobRequest::Load(plan, cancel)).is_err() {
            set_job(&self.job, |job| {
                job.state = "failed";
                job.error = Some(format!("{id} stopped before the load run began"));
            });
            return Err(ApiError::Conflict(format!("{id} is stopping")));
        }
        Ok(view)
    }

    /// Starts a check of the learner's code on `scenario`: its own lab, whether or not the
    /// playground runs (`jobs::check_job`). Refused while a job is under way, while another
    /// scenario runs here, and while this one is starting (its PostgreSQL is not up yet).
    pub(super) async fn submit_check(
        &self,
        lab: Arc<Lab>,
        scenario: Scenario,
    ) -> Result<JobView, ApiError> {
        let id = scenario.id.clone();
        let slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref().filter(|s| !s.task.is_finished()) {
            if current.scenario != id {
                return Err(ApiError::Conflict(format!(
                    "{} is running in this lab; stop it before checking {id}",
                    current.scenario
                )));
            }
            let guard = current
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if matches!(guard.status, RunStatus::Starting { .. }) {
                return Err(ApiError::Conflict(format!(
                    "{id} is starting; check once it is running (or stopped)"
                )));
            }
        }
        let (view, cancel) = self.claim_job(&id, "check")?;
        let mut task = self.check_task.lock().await;
        if let Some(previous) = task.take() {
            // The last check's lab, finishing its shutdown.
            let _ = previous.await;
        }
        *task = Some(tokio::spawn(super::jobs::check_job(
            lab,
            scenario,
            Arc::clone(&self.job),
            cancel,
        )));
        Ok(view)
    }

    /// Cancels the check of `id` under way, if any, and waits until its lab is down.
    async fn cancel_check(&self, id: &str) {
        if let Some(token) = running_job(&self.job, id, "check") {
            token.cancel();
            if let Some(task) = self.check_task.lock().await.take() {
                let _ = task.await;
            }
        }
    }

    pub(super) async fn cancel_job(&self, id: &str) {
        let guard = self.job.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(job) = guard.as_ref().filter(|j| j.scenario == id) {
            job.cancel.cancel();
        }
    }

    pub(super) async fn job(&self, id: &str) -> Option<JobView> {
        let guard = self.job.lock().unwrap_or_else(PoisonError::into_inner);
        guard
            .as_ref()
            .filter(|j| j.scenario == id)
            .map(|j| j.view.clone())
    }

    /// Where load goes while `id` runs here (`Running::load_targets`).
    pub(super) async fn load_targets(&self, id: &str) -> Option<Vec<String>> {
        self.read(id, |s| match &s.status {
            RunStatus::Running { .. } if !s.load_targets.is_empty() => Some(s.load_targets.clone()),
            _ => None,
        })
        .await
    }

    /// The samples of the lab this server runs for `id` (None when it runs none).
    pub(super) async fn samples(&self, id: &str) -> Option<watch::Receiver<Option<Sample>>> {
        self.read(id, |s| s.samples.clone()).await
    }

    /// What the metrics collector should watch while this server runs `id`.
    pub(super) async fn targets(&self, id: &str) -> Option<Targets> {
        self.read(id, |s| s.targets.clone()).await
    }

    /// Reads the shared state of the scenario this server runs, when it is `id`.
    async fn read<T>(&self, id: &str, f: impl FnOnce(&Shared) -> Option<T>) -> Option<T> {
        let slot = self.slot.lock().await;
        let current = slot.as_ref().filter(|s| s.scenario == id)?;
        let guard = current
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }
}
