//! Load runs and checks on the scenario this server runs: the handlers that validate and
//! submit them (`runner::Runner::submit`: one at a time), and `run_job`, which the scenario's
//! task polls (it owns the `Running` a check needs) and which records each second, the result
//! and, through `crate::learner`, the finished run in the history and progress.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::model::{CheckView, JobView, LoadRequest, SecondView, SummaryView};
use super::runner::{JobRequest, Shared};
use super::{ApiError, ApiState};
use crate::check;
use crate::learner;
use crate::load::{self, SecondStats};
use crate::{Lab, Running};

/// Runs a load plan or the check against `running`, recording each second and the result
/// in `shared.job`.
pub(super) async fn run_job(
    lab: &Lab,
    running: &Running,
    request: JobRequest,
    shared: Arc<Mutex<Shared>>,
    cancel: CancellationToken,
) {
    let (ticks, mut received) = mpsc::unbounded_channel::<SecondStats>();
    let sink = Arc::clone(&shared);
    let forward = async move {
        while let Some(t) = received.recv().await {
            Shared::set(&sink, |s| {
                if let Some(job) = s.job.as_mut() {
                    job.seconds.push(SecondView::from(&t));
                }
            });
        }
    };
    let finish = |f: &dyn Fn(&mut JobView)| {
        Shared::set(&shared, |s| {
            if let Some(job) = s.job.as_mut() {
                f(job)
            }
        })
    };
    match request {
        JobRequest::Load(plan) => {
            let (result, ()) = tokio::join!(load::run(plan, Some(ticks), cancel), forward);
            match result {
                Ok(summary) => {
                    let saved = learner::record_load(
                        &lab.home,
                        &running.scenario.id,
                        &summary,
                        job_seconds(&shared),
                    );
                    let summary = SummaryView::from(&summary);
                    finish(&|job| {
                        job.state = "done";
                        job.summary = Some(summary.clone());
                        if let Err(e) = &saved {
                            job.error =
                                Some(format!("the run finished but could not be recorded: {e}"));
                        }
                    })
                }
                Err(e) => finish(&|job| {
                    job.state = "failed";
                    job.error = Some(e.to_string());
                }),
            }
        }
        JobRequest::Check => {
            let (result, ()) =
                tokio::join!(check::run(running, Some(ticks), cancel.clone()), forward);
            match result {
                // A cancelled check judged a partial run: it does not count.
                Ok(_) if cancel.is_cancelled() => finish(&|job| {
                    job.state = "failed";
                    job.error = Some("the check was cancelled".to_string());
                }),
                Ok(report) => {
                    let saved = learner::record_check(
                        &lab.home,
                        &running.scenario.id,
                        &report,
                        job_seconds(&shared),
                    );
                    finish(&|job| {
                        job.state = "done";
                        job.summary = report.summary.as_ref().map(SummaryView::from);
                        job.check = Some(CheckView::from(&report));
                        if let Err(e) = &saved {
                            job.error =
                                Some(format!("the check ran but could not be recorded: {e}"));
                        }
                    })
                }
                Err(e) => finish(&|job| {
                    job.state = "failed";
                    job.error = Some(e.to_string());
                }),
            }
        }
        JobRequest::Cancel => {}
    }
}

/// The per-second stats the job under way collected (they go to the history with its result).
fn job_seconds(shared: &Mutex<Shared>) -> Vec<SecondView> {
    let guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
    guard
        .job
        .as_ref()
        .map(|j| j.seconds.clone())
        .unwrap_or_default()
}

/// The longest load run the API starts (load is always bounded).
const MAX_LOAD: Duration = Duration::from_secs(600);
/// The highest arrival rate the API accepts, as the CLI.
const MAX_RATE: f64 = 20_000.0;

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
    let profile = scenario.profile(name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{} has no load profile {name:?}; it has: {}",
            scenario.id,
            scenario
                .profiles
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let duration = match request.duration {
        Some(s) if s > 0.0 && s <= MAX_LOAD.as_secs_f64() => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(ApiError::BadRequest(format!(
                "duration {s}: expected seconds, more than 0 and at most 600"
            )))
        }
        None => None,
    };
    if let Some(r) = request.rate {
        if !(r > 0.0 && r <= MAX_RATE) {
            return Err(ApiError::BadRequest(format!(
                "rate {r}: expected requests per second, more than 0 and at most 20000"
            )));
        }
    }
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
    let plan = profile.plan(targets, request.rate, duration);
    let view = state
        .runner
        .submit(&scenario.id, JobRequest::Load(plan), "load")
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// `POST .../check`: runs the scenario's check on the running service (202).
pub(super) async fn start_check(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let view = state
        .runner
        .submit(&scenario.id, JobRequest::Check, "check")
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
