//! The scenario this server runs: at most one at a time. `start` spawns `Lab::up` in a
//! background task and returns at once; the task records each progress event and the
//! resulting state (starting, running, failed) where `status` reads it, then holds the
//! `Running` until `stop` (or the server's shutdown) and shuts it down.
//!
//! Load runs are handed to that task (`JobRequest`); a check runs beside it, never on it: its
//! own lab (the learner's code on a fresh copy of the seeded database, its own instances) on
//! its own runtime (`jobs::check_job`), attached to the playground's PostgreSQL when that
//! runs, so the playground is left untouched. Both land their per-second stats and results
//! in the one job `GET .../job` reads (`JobSlot`).
//!
//! **Invariant:** one scenario per server. Starting another while one is starting or running
//! is a 409; starting the same one again returns its status. One job at a time: a load run
//! or check under way refuses another. A check is refused while another scenario runs or its
//! own is starting; a start is refused while a check runs (the check's lab may own the
//! PostgreSQL the start would attach to), and a stop cancels the scenario's check first.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::model::{EventView, JobView, RunStatus, StatusView};
use super::ApiError;
use crate::build::BuildError;
use crate::catalog::Scenario;
use crate::load::LoadPlan;
use crate::metrics::export;
use crate::metrics::{Sample, Targets};
use crate::process::RunState;
use crate::progress::{ActiveSteps, Progress};
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
                run(
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

/// The background task: bring the scenario up, hold it until `stop`, shut it down.
async fn run(
    lab: Arc<Lab>,
    scenario: Scenario,
    shared: Arc<Mutex<Shared>>,
    stop: CancellationToken,
    mut job_requests: mpsc::UnboundedReceiver<JobRequest>,
    jobs: JobCell,
) {
    let sink = Arc::clone(&shared);
    // Steps can overlap (the seed runs while the service builds): the status names them all.
    let active = Mutex::new(ActiveSteps::default());
    let progress = Progress::new(move |event| {
        let mut active = active.lock().unwrap_or_else(PoisonError::into_inner);
        active.follow(&event);
        Shared::set(&sink, |s| {
            if let (RunStatus::Starting { .. }, Some(step)) = (&s.status, active.label()) {
                s.status = RunStatus::Starting { step: Some(step) };
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
    // One collector for the lab while it runs here: the metrics streams and the lab's series
    // for Prometheus (`sdlab prometheus <id>`) read its samples.
    let collector_cancel = CancellationToken::new();
    let _collector_stop = collector_cancel.clone().drop_guard();
    let samples = export::collect_and_export(
        running.targets(),
        &lab.home.run_dir(),
        &scenario.id,
        collector_cancel,
    )
    .await;
    Shared::set(&shared, |s| s.samples = Some(samples));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    // The load run under way: polled here, so that stopping the scenario ends it.
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
            Wake::Request(Some(JobRequest::Load(plan, cancel))) => {
                job_cancel = cancel.clone();
                job = Some(Box::pin(super::jobs::run_load(
                    &lab,
                    &running.scenario.id,
                    plan,
                    Arc::clone(&jobs),
                    cancel,
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
    let had_job = job.is_some();
    drop(job);
    if had_job {
        set_job(&jobs, |j| {
            if j.state == "running" {
                j.state = "failed";
                j.error = Some("the scenario stopped before it finished".to_string());
            }
        });
    }
    running.shutdown().await;
    Shared::set(&shared, |s| {
        if matches!(s.status, RunStatus::Running { .. }) {
            s.status = RunStatus::Stopped;
        }
        s.database_url = None;
        s.targets = None;
        s.samples = None;
        s.load_targets.clear();
    });
}

/// Removes the run state a failed or abandoned `Lab::up` left behind in this process's name.
///
/// `Lab::up` records the PostgreSQL it started as soon as it is up; when a later step fails,
/// the server is stopped on drop but the record stays. A CLI process exits right after, which
/// makes the record stale; this server lives on, so the record would claim a live lab (ours)
/// with a dead PostgreSQL, and the next start or `sdlab sql` would try to attach to it.
pub(super) fn forget_own_state(lab: &Lab, scenario: &Scenario) {
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
