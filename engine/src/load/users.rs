//! The closed model: `users` virtual users, each sending its next request as soon as its
//! previous one is answered.
//!
//! This is the generator's fast path, used for full-speed runs. Each user is one task that
//! owns its connections ([`Connection`], one per target) and loops: take the next request
//! from the shared mix, send it, record it. Nothing is spawned per request and there is no
//! pool to check a connection out of. Arrivals still take the targets in turn (one shared
//! counter), and requests are still drawn in order from the one seeded mix, as in the open
//! model.
//!
//! A closed model has no schedule, so a request is due when its user starts it:
//! `intended_at` is the send time. That is exactly the coordinated omission the open model
//! corrects for (a stalled server gets fewer requests, not later ones): use the open model
//! to measure latency, this one to measure how fast a server can go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::aggregate::Progress;
use super::params::{Mix, Rendered};
use super::plan::{LoadPlan, Model};
use super::record::RequestRecord;
use super::send::{Connection, Target};

/// What every user shares: the requests to send and where to send them next.
struct Shared {
    /// The mix and the run's one random generator: requests are drawn in arrival order.
    mix: Mutex<(Mix, StdRng)>,
    /// Arrivals so far: arrival `n` goes to target `n % targets`.
    turn: AtomicUsize,
    end: Instant,
    records: UnboundedSender<RequestRecord>,
    progress: Arc<Progress>,
}

/// Runs the plan's users until the end of the plan (or `cancel`); returns how long the run
/// lasted. For closed-model plans only: an open one sends nothing.
pub(crate) async fn run(
    plan: &LoadPlan,
    start: Instant,
    mix: Mix,
    targets: Vec<Target>,
    records: UnboundedSender<RequestRecord>,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Duration {
    let Model::Closed { users } = plan.model else {
        return Duration::ZERO;
    };
    let end = start + plan.duration();
    let shared = Arc::new(Shared {
        mix: Mutex::new((mix, StdRng::seed_from_u64(plan.seed))),
        turn: AtomicUsize::new(0),
        end,
        records,
        progress,
    });
    let mut tasks = JoinSet::new();
    for _ in 0..users {
        let connections = targets
            .iter()
            .map(|t| Connection::new(t.clone(), plan.timeout))
            .collect();
        tasks.spawn(user(Arc::clone(&shared), connections));
    }
    // Each user stops at `end`, then finishes its request in flight (bounded by the timeout).
    let cancelled_at = tokio::select! {
        () = cancel.cancelled() => Some(Instant::now()),
        () = async { while tasks.join_next().await.is_some() {} } => None,
    };
    tasks.shutdown().await;
    shared.progress.advance(None);
    cancelled_at
        .unwrap_or(end)
        .min(end)
        .saturating_duration_since(start)
}

/// One virtual user: request after request, until the end of the run.
async fn user(shared: Arc<Shared>, mut connections: Vec<Connection>) {
    while let Some(intended_at) = shared.progress.start_now(shared.end) {
        let (template, request) = next_request(&shared);
        let turn = shared.turn.fetch_add(1, Ordering::Relaxed) % connections.len();
        let connection = &mut connections[turn];
        let record = connection.send(template, intended_at, request).await;
        // Queue the record before marking it finished: see `Progress`. The consumer is gone
        // only if the run itself was dropped.
        let _ = shared.records.send(record);
        shared
            .progress
            .finished(shared.progress.second_of(intended_at));
    }
}

fn next_request(shared: &Shared) -> (usize, Rendered) {
    // Held for one draw, never across an await; a panic mid-draw leaves a usable generator.
    let mut guard = shared.mix.lock().unwrap_or_else(PoisonError::into_inner);
    let (mix, rng) = &mut *guard;
    mix.sample(rng)
}
