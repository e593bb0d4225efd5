//! The background task behind a start (`Runner::start` spawns it): brings the scenario up,
//! publishes each progress event and the resulting state in `Shared`, runs the load jobs
//! handed to it while holding the `Running`, notices a service that died, and shuts it all
//! down on `stop`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{set_job, JobCell, JobRequest, Shared};
use crate::api::model::{EventView, RunStatus};
use crate::build::BuildError;
use crate::catalog::Scenario;
use crate::metrics::export;
use crate::process::RunState;
use crate::progress::{ActiveSteps, Progress};
use crate::topology::{Lab, LabError, UpOptions};
use crate::workspace::CodeSource;
use crate::DatabaseChoice;

/// Progress events kept per start (a start has about a dozen).
const MAX_EVENTS: usize = 200;
/// Log lines quoted when a service dies.
const CRASH_LOG_LINES: usize = 40;

/// The background task: bring the scenario up, hold it until `stop`, shut it down.
pub(super) async fn run(
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
                job = Some(Box::pin(crate::api::jobs::run_load(
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
pub(in crate::api) fn forget_own_state(lab: &Lab, scenario: &Scenario) {
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
