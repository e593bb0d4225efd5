//! The lab's load generator: an open-model HTTP load run with coordinated-omission-corrected
//! latency.
//!
//! [`run`] sends the requests of a [`LoadPlan`] to a loopback target on a fixed schedule,
//! whether or not earlier requests have finished, and measures each latency from the moment
//! the request was *due* ([`RequestRecord::intended_at`]). A server that stalls for a second
//! therefore shows a second of latency in the percentiles, instead of the load generator
//! politely waiting and never sending the requests that would have seen it.
//!
//! # Layout
//! - `plan.rs`: [`LoadPlan`] and its parts (stages, templates, parameter generators).
//! - `schedule.rs`: when each request of the open model is due (from the stages' rates), and
//!   the in-flight cap; `timer.rs` waits for those instants to well under a millisecond.
//! - `users.rs`: the closed model (N virtual users, each one task looping over its own
//!   connections): the fast path for full-speed runs.
//! - `params.rs`: the weighted mix and deterministic parameter generation from the seed.
//! - `send.rs`: the target check (loopback only) and the lab's own HTTP/1.1 keep-alive client
//!   (one connection per user or per request in flight); `http1.rs` the bytes it writes and
//!   the reader that frames the answers.
//! - `record.rs`: [`RequestRecord`], one per request, and the latency it is charged.
//! - `request_ids.rs`: [`RequestIds`], a unique ID header on every request of a run and what
//!   the answers carried back ([`run_with_request_ids`]; `[check.request_ids]`).
//! - `aggregate.rs`: per-second [`SecondStats`] and the [`RunSummary`].
//!
//! In the open model the scheduler below spawns one task per request (requests overlap
//! freely, so each needs its own task). Either way every request sends one [`RequestRecord`]
//! over a channel and the aggregator consumes them, so sending never waits on statistics.
//!
//! **Invariant:** a run always ends by itself: at the end of the plan, or when `cancel`
//! fires, plus at most one timeout for the requests still in flight (one more per resend of
//! a template with [`RequestTemplate::retries`]).
//! **Invariant:** every arrival is counted in `sent` and in the latency histogram, failures
//! included; nothing that failed makes the percentiles look better.

mod aggregate;
mod http1;
mod params;
mod plan;
mod publish;
mod record;
mod request_ids;
mod schedule;
mod send;
mod sessions;
mod timer;
mod users;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use aggregate::{LatencySummary, RunSummary, SecondStats, TemplateSummary, MAX_LATENCY_US};
pub use params::MAX_ZIPF_N;
pub(crate) use params::{header_problem, Mix, Rendered};
pub use plan::{
    retry_name, LoadPlan, LoadTargets, Method, Model, ParamGen, RequestTemplate, Sessions, Stage,
};
pub use publish::{LoadTally, ERROR_KINDS};
pub use record::{status_label, ErrorKind, Outcome, RequestRecord};
pub use request_ids::{Echo, RequestIds, Tagged};
pub(crate) use send::hyper_method;
pub use sessions::{log_in, prepare as prepare_sessions, SessionSpec};

use aggregate::{Aggregator, Progress};
use schedule::Arrivals;
use send::{Sender, Target};

/// Why a load run could not start. Once started, a run does not fail: errors of individual
/// requests are counted in the summary.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("load target `{url}`: host `{host}` is not a loopback address; the lab only sends load to services on this machine (e.g. http://127.0.0.1:PORT)")]
    NotLoopback { url: String, host: String },
    #[error("load target `{url}`: {problem}")]
    Target { url: String, problem: String },
    #[error("load plan field `{field}`: {problem}")]
    Plan { field: String, problem: String },
    #[error("logging in user {user} before the load ({request}): {problem}")]
    Login {
        user: usize,
        request: String,
        problem: String,
    },
    #[error("could not create a latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

impl LoadError {
    fn plan(field: impl Into<String>, problem: impl Into<String>) -> Self {
        LoadError::Plan {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Runs `plan` to its end (or until `cancel`) and summarises it.
///
/// Per-second stats go to `ticks` as each second completes (see [`SecondStats`]); the last
/// seconds are sent when the run ends. On cancellation, scheduling stops and requests still
/// in flight are abandoned and not counted.
pub async fn run(
    plan: LoadPlan,
    ticks: Option<UnboundedSender<SecondStats>>,
    cancel: CancellationToken,
) -> Result<RunSummary, LoadError> {
    run_tagged(plan, None, ticks, cancel).await
}

/// As [`run`], with every request carrying the next ID of `ids` in its header; `ids` then
/// holds what each request's answer carried back ([`RequestIds::sent`]).
pub async fn run_with_request_ids(
    plan: LoadPlan,
    ids: RequestIds,
    ticks: Option<UnboundedSender<SecondStats>>,
    cancel: CancellationToken,
) -> Result<RunSummary, LoadError> {
    run_tagged(plan, Some(ids), ticks, cancel).await
}

async fn run_tagged(
    plan: LoadPlan,
    ids: Option<RequestIds>,
    ticks: Option<UnboundedSender<SecondStats>>,
    cancel: CancellationToken,
) -> Result<RunSummary, LoadError> {
    plan.validate()?;
    if plan.sessions.is_none() {
        if let Some(t) = plan.mix.iter().find(|t| t.auth && t.weight > 0) {
            return Err(LoadError::plan(
                format!("mix ({})", t.name),
                "a request sent as a logged-in user, and no users logged in: call \
                 load::prepare_sessions first",
            ));
        }
    }
    let targets = plan
        .targets
        .iter()
        .map(|url| Target::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    let mix = Mix::new(&plan.mix)?
        .with_sessions(plan.sessions.clone())
        .with_request_ids(ids);
    let empty = Histogram::new_with_max(MAX_LATENCY_US, 3)?;
    // The kinds the records fall in: the mix's, then `<name> (retry)` for each template
    // that retries.
    let mut names: Vec<String> = plan.mix.iter().map(|t| t.name.clone()).collect();
    let retries: Vec<Option<Retry>> = plan
        .mix
        .iter()
        .map(|t| {
            (t.retries > 0).then(|| {
                names.push(retry_name(&t.name));
                Retry {
                    kind: names.len() - 1,
                    times: t.retries,
                }
            })
        })
        .collect();

    let start = Instant::now();
    let progress = Arc::new(Progress::new(start));
    let (records, received) = mpsc::unbounded_channel();
    let aggregator = Aggregator::new(start, plan.duration(), names, empty, ticks);
    // The consumer drains the records until the producer below has finished and dropped
    // every sender.
    let finished = CancellationToken::new();
    let consumer = aggregator.consume(received, Arc::clone(&progress), finished.clone());
    let producer = async {
        let duration = match plan.model {
            Model::Open => {
                let senders = targets
                    .into_iter()
                    .map(|t| Sender::new(t, plan.timeout))
                    .collect();
                let run = Dispatch {
                    plan: &plan,
                    start,
                    retries,
                };
                run.dispatch(mix, senders, records, progress, cancel).await
            }
            Model::Closed { .. } => {
                users::run(&plan, start, mix, targets, records, progress, cancel).await
            }
        };
        finished.cancel();
        duration
    };
    let (aggregator, duration) = tokio::join!(consumer, producer);
    Ok(aggregator.finish(duration))
}

/// How a template retries: its resends' kind (an index into the run's kinds) and how many
/// resends at most.
#[derive(Debug, Clone, Copy)]
struct Retry {
    kind: usize,
    times: u32,
}

/// An open-model run's fixed inputs.
struct Dispatch<'a> {
    plan: &'a LoadPlan,
    start: Instant,
    /// By template: how it retries (`None`: it does not).
    retries: Vec<Option<Retry>>,
}

impl Dispatch<'_> {
    /// The open model's scheduler: takes each arrival when it is due, renders it and spawns
    /// its request on the next target in turn (round robin over `senders`, one per target).
    /// Returns how long the run lasted (the plan's duration unless cancelled).
    async fn dispatch(
        self,
        mut mix: Mix,
        senders: Vec<Sender>,
        records: UnboundedSender<RequestRecord>,
        progress: Arc<Progress>,
        cancel: CancellationToken,
    ) -> Duration {
        let Dispatch {
            plan,
            start,
            retries,
        } = self;
        let mut rng = StdRng::seed_from_u64(plan.seed);
        let mut arrivals = Arrivals::new(plan, start);
        let mut requests = JoinSet::new();
        let mut turn = 0usize;
        progress.advance(arrivals.frontier());
        let cancelled_at = loop {
            let arrival = tokio::select! {
                biased;
                () = cancel.cancelled() => break Some(Instant::now()),
                arrival = arrivals.next() => arrival,
            };
            let Some(arrival) = arrival else { break None };
            let (template, request) = mix.sample(&mut rng);
            let intended_at = arrival.intended_at;
            let second = progress.second_of(intended_at);
            match arrival.slot {
                Some(slot) => {
                    progress.started(second);
                    let sender = senders[turn % senders.len()].clone();
                    turn = turn.wrapping_add(1);
                    let (records, progress) = (records.clone(), Arc::clone(&progress));
                    let retry = retries[template];
                    requests.spawn(async move {
                        let attempt = Attempt {
                            sender,
                            records,
                            progress,
                        };
                        attempt
                            .send(template, intended_at, second, request, retry)
                            .await;
                        drop(slot);
                    });
                }
                None => {
                    let _ =
                        records.send(RequestRecord::dropped(template, intended_at, plan.timeout));
                }
            }
            progress.advance(arrivals.frontier());
            while requests.try_join_next().is_some() {}
        };
        progress.advance(None);

        // Last the whole plan (a trailing stage may be a quiet cooldown), then let the
        // requests in flight finish: each ends by its own deadline (and its resends' own), so
        // this is bounded.
        if cancelled_at.is_none() {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = async {
                    tokio::time::sleep_until(arrivals.end().into()).await;
                    while requests.join_next().await.is_some() {}
                } => {}
            }
        }
        requests.shutdown().await;
        match cancelled_at {
            Some(at) => at.saturating_duration_since(start).min(plan.duration()),
            None => arrivals.end().saturating_duration_since(start),
        }
    }
}

/// One arrival's request in the open model, and its resends when it retries.
struct Attempt {
    sender: Sender,
    records: UnboundedSender<RequestRecord>,
    progress: Arc<Progress>,
}

impl Attempt {
    async fn send(
        self,
        template: usize,
        intended_at: Instant,
        mut second: u32,
        request: Rendered,
        retry: Option<Retry>,
    ) {
        let Attempt {
            sender,
            records,
            progress,
        } = self;
        let again = retry.map(|_| request.resend());
        let mut record = sender.send(template, intended_at, request).await;
        if let (Some(retry), Some(again)) = (retry, again) {
            let mut left = retry.times;
            while left > 0 && record.outcome == Outcome::Error(ErrorKind::Timeout) {
                left -= 1;
                // A resend is due the moment the client gave up. Counted as started before
                // the timed-out attempt is finished, so its second is never judged complete
                // in between (see `Progress`).
                let due = Instant::now();
                let due_second = progress.second_of(due);
                progress.started(due_second);
                let _ = records.send(record);
                progress.finished(second);
                second = due_second;
                record = sender.send(retry.kind, due, again.clone()).await;
            }
        }
        // Queue the record before marking it finished: see `Progress`. The consumer is gone
        // only if the run itself was dropped.
        let _ = records.send(record);
        progress.finished(second);
    }
}
