//! Load runs and checks: the handlers that validate and submit them (one at a time, see
//! `runner`), `run_load`, which the playground's task polls, and `check_job`, a check in its
//! own lab. Each records its seconds and result in the job `GET .../job` reads and, through
//! `crate::learner`, the finished run in the history and progress.
//!
//! A check never judges the playground: it brings up the learner's code on a fresh copy of
//! the seeded database with the code's own `migrations/` (`DatabaseChoice::Check`), its own
//! instances, nginx and stub dependency, on the scenario's PostgreSQL (attached to when the
//! playground runs, started otherwise), runs the check there and shuts that lab down. So an
//! index made by hand in the console, or a migration deleted after it ran, does not count.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::model::{CheckView, JobView, LoadRequest, SecondView, SummaryView};
use super::runner::{forget_own_state, job_view, set_job, JobCell, JobSlot};
use super::{ApiError, ApiState};
use crate::build::BuildError;
use crate::catalog::Scenario;
use crate::check;
use crate::learner;
use crate::load::{self, LoadPlan, SecondStats};
use crate::progress::{ActiveSteps, Event, Progress};
use crate::workspace::CodeSource;
use crate::{DatabaseChoice, Lab, LabError, Running, UpOptions};

/// The per-second stats of a run, forwarded into the job as they come.
fn forward_seconds(
    jobs: &JobCell,
    tally: Option<std::path::PathBuf>,
) -> (
    mpsc::UnboundedSender<SecondStats>,
    impl std::future::Future<Output = ()>,
) {
    let (ticks, mut received) = mpsc::unbounded_channel::<SecondStats>();
    let sink = Arc::clone(jobs);
    let forward = async move {
        // A playground load is published for the lab's Prometheus exporter (a check's is not:
        // it loads its own lab).
        let mut sum = load::LoadTally::default();
        while let Some(t) = received.recv().await {
            set_job(&sink, |job| job.seconds.push(SecondView::from(&t)));
            if let Some(path) = &tally {
                sum.add(&t);
                let _ = sum.write(path);
            }
        }
    };
    (ticks, forward)
}

/// Runs a load plan on the playground, recording each second and the summary.
pub(super) async fn run_load(
    lab: &Lab,
    scenario: &str,
    plan: LoadPlan,
    jobs: JobCell,
    cancel: CancellationToken,
) {
    let tally = load::LoadTally::path(&lab.home.run_dir(), scenario);
    let (ticks, forward) = forward_seconds(&jobs, Some(tally));
    let (result, ()) = tokio::join!(load::run(plan, Some(ticks), cancel), forward);
    match result {
        Ok(summary) => {
            let saved = learner::record_load(&lab.home, scenario, &summary, job_seconds(&jobs));
            let summary = SummaryView::from(&summary);
            set_job(&jobs, |job| {
                job.state = "done";
                job.summary = Some(summary);
                if let Err(e) = &saved {
                    job.error = Some(format!("the run finished but could not be recorded: {e}"));
                }
            })
        }
        Err(e) => set_job(&jobs, |job| {
            job.state = "failed";
            job.error = Some(e.to_string());
        }),
    }
}

/// A check of the learner's code in its own lab (module doc), on its own runtime: `Lab::up`'s
/// future is not `Send` (see `on_own_runtime`). The job says which starting steps are under
/// way until the check's load begins.
pub(super) async fn check_job(
    lab: Arc<Lab>,
    scenario: Scenario,
    jobs: JobCell,
    cancel: CancellationToken,
) {
    let cell = Arc::clone(&jobs);
    let ran = super::on_own_runtime("check the scenario", move || {
        check_in_own_lab(lab, scenario, cell, cancel)
    })
    .await;
    if let Err(e) = ran {
        fail_check(&jobs, e.to_string());
    }
}

fn fail_check(jobs: &Mutex<Option<JobSlot>>, error: String) {
    set_job(jobs, |job| {
        if job.state == "running" {
            job.state = "failed";
            job.step = None;
            job.error = Some(error);
        }
    });
}

async fn check_in_own_lab(
    lab: Arc<Lab>,
    scenario: Scenario,
    jobs: JobCell,
    cancel: CancellationToken,
) {
    let sink = Arc::clone(&jobs);
    // Steps can overlap (the copy of the database while the service builds): name them all.
    let active = Mutex::new(ActiveSteps::default());
    let progress = Progress::new(move |event| {
        if matches!(event, Event::Info(_)) {
            return;
        }
        let mut active = active.lock().unwrap_or_else(PoisonError::into_inner);
        active.follow(&event);
        let label = active.label();
        set_job(&sink, |job| {
            job.step = label.map(|l| format!("starting the check's own lab: {l}"))
        });
    });
    // Attached to a live lab's PostgreSQL (the playground's), or owning one for the check.
    let attached = lab.live_state(&scenario).is_some();
    let opts = UpOptions {
        code: CodeSource::Learner,
        database: DatabaseChoice::Check,
        progress,
    };
    // Dropping `up` midway is safe: whatever it started stops on drop.
    let up = tokio::select! {
        up = lab.up(&scenario, opts) => Some(up),
        _ = cancel.cancelled() => None,
    };
    let running = match up {
        Some(Ok(running)) => running,
        None | Some(Err(_)) => {
            if !attached {
                forget_own_state(&lab, &scenario);
            }
            let error = match up {
                Some(Err(LabError::Build(BuildError::Compile {
                    package,
                    diagnostics,
                }))) => format!(
                    "{package} does not compile, so the check could not run:\n{diagnostics}"
                ),
                Some(Err(e)) => format!("your code could not be started for the check: {e}"),
                _ => "the check was cancelled".to_string(),
            };
            fail_check(&jobs, error);
            return;
        }
    };
    set_job(&jobs, |job| job.step = None);
    judge(&lab, &running, &jobs, &cancel).await;
    running.shutdown().await;
}

/// Runs the check on `running`, recording each second and the verdict.
async fn judge(lab: &Lab, running: &Running, jobs: &JobCell, cancel: &CancellationToken) {
    let (ticks, forward) = forward_seconds(jobs, None);
    let (result, ()) = tokio::join!(
        check::run(running, Some(ticks), cancel.clone(), check::Load::Run),
        forward
    );
    match result {
        // A cancelled check judged a partial run: it does not count.
        Ok(_) if cancel.is_cancelled() => fail_check(jobs, "the check was cancelled".to_string()),
        Ok(report) => {
            let saved =
                learner::record_check(&lab.home, &running.scenario.id, &report, job_seconds(jobs));
            set_job(jobs, |job| {
                job.state = "done";
                job.summary = report.summary.as_ref().map(SummaryView::from);
                job.check = Some(CheckView::from(&report));
                if let Err(e) = &saved {
                    job.error = Some(format!("the check ran but could not be recorded: {e}"));
                }
            })
        }
        Err(e) => fail_check(jobs, e.to_string()),
    }
}

/// The per-second stats the job under way collected (they go to the history with its result).
fn job_seconds(jobs: &Mutex<Option<JobSlot>>) -> Vec<SecondView> {
    job_view(jobs).map(|j| j.seconds).unwrap_or_default()
}

/// `POST .../load`: starts a load run on the running service (202); body optional.
pub(super) async fn start_load(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let request: LoadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LoadRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("load body: {e}")))?
    };
    let name = request.profile.as_deref().unwrap_or("explore");
    // Seconds from JSON: anything not a finite positive number is refused as 0 s is.
    let duration = request.duration.map(|s| {
        if s.is_finite() && s > 0.0 {
            Duration::from_secs_f64(s.min(1e9))
        } else {
            Duration::ZERO
        }
    });
    let profile = scenario
        .load_request(name, request.rate, duration)
        .map_err(ApiError::BadRequest)?;
    let targets = state
        .runner
        .load_targets(&scenario.id)
        .await
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "{} is not running here; start it first",
                scenario.id
            ))
        })?;
    let mut plan = profile.plan(targets, request.rate, duration);
    // Scenarios with logins: the users log in first, through the same targets (a 409 with
    // the service's answer when it cannot log them in).
    plan.sessions =
        crate::load::prepare_sessions(scenario.sessions.as_ref(), &plan.targets, plan.timeout)
            .await
            .map_err(|e| ApiError::Conflict(e.to_string()))?;
    let view = state.runner.submit_load(&scenario.id, plan).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `POST .../check`: checks the learner's code in its own lab (module doc), whether or not
/// the playground runs (202).
pub(super) async fn start_check(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let view = state
        .runner
        .submit_check(Arc::clone(&state.lab), scenario)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `GET .../job`: the last load run or check (404 when there was none).
pub(super) async fn job(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    state
        .runner
        .job(&scenario.id)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no load run or check on {} yet", scenario.id)))
}

/// `POST .../job/cancel`: ends the load run or check under way.
pub(super) async fn cancel_job(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    state.runner.cancel_job(&scenario.id).await;
    Ok(StatusCode::ACCEPTED)
}
