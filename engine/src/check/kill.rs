//! Killing an instance during the check load (`[check] kill_instance_at`), as a crash, an
//! out-of-memory kill or a deploy would: at that moment the instance that has served the most
//! requests so far (the one with most to lose: with `ip_hash` behind one client address, the
//! one that has every user) gets SIGKILL, with no chance to hand anything over. Its request
//! counters are read just before, so what it served still counts. An instance too busy to
//! answer its `/metrics` in time counts as the busiest.
//!
//! The kill happens only while the load runs: `run.rs` races it against the load, so a load
//! that ends (or is cancelled) first kills nothing, and the check says so.

use std::time::{Duration, Instant};

use super::Killed;
use crate::lab::Running;
use crate::metrics::PromText;

/// What the check did about `kill_instance_at`.
#[derive(Debug, Clone)]
pub enum KillOutcome {
    /// The instance at this index of `Running::services` was killed; its last scrape (None
    /// when it did not answer).
    Killed(usize, Killed, Option<PromText>),
    /// Nothing was killed, and why.
    Missed(String),
}

/// Runs the check `load`, and kills the busiest instance `at` into it (when the scenario
/// asks): the kill races the load, so it happens only while the load still runs.
pub async fn load_racing_the_kill<T>(
    load: impl std::future::Future<Output = T>,
    at: Option<Duration>,
    running: &Running,
    before: &[Option<PromText>],
) -> (T, Option<KillOutcome>) {
    let Some(at) = at else {
        return (load.await, None);
    };
    tokio::pin!(load);
    tokio::select! {
        summary = &mut load => {
            let missed = format!("the load ended before {:.0} s", at.as_secs_f64());
            (summary, Some(KillOutcome::Missed(missed)))
        }
        outcome = busiest_after(at, running, before) => (load.await, Some(outcome)),
    }
}

/// Waits `at`, then kills the busiest instance of `running`.
pub async fn busiest_after(
    at: Duration,
    running: &Running,
    before: &[Option<PromText>],
) -> KillOutcome {
    let started = Instant::now();
    tokio::time::sleep(at).await;
    let ports: Vec<u16> = running.services.iter().map(|s| s.port).collect();
    let scrapes = crate::metrics::scrape_all(&ports, Duration::from_secs(1)).await;
    let served = |i: usize, now: Option<&PromText>| match now {
        Some(now) => {
            let then = before
                .get(i)
                .and_then(|b| b.as_ref())
                .and_then(|b| b.sum(super::run::REQUESTS_TOTAL))
                .unwrap_or(0.0);
            now.sum(super::run::REQUESTS_TOTAL).unwrap_or(0.0) - then
        }
        // Too busy to answer (or already dead): the one to kill.
        None => f64::INFINITY,
    };
    let scrapes: Vec<Option<PromText>> = scrapes.into_iter().map(Result::ok).collect();
    let Some(index) = (0..scrapes.len())
        .max_by(|&a, &b| served(a, scrapes[a].as_ref()).total_cmp(&served(b, scrapes[b].as_ref())))
    else {
        return KillOutcome::Missed("no instance to kill".to_string());
    };
    let service = &running.services[index];
    crate::process::signal(service.pid, libc::SIGKILL);
    KillOutcome::Killed(
        index,
        Killed {
            instance: service.instance,
            at: started.elapsed(),
        },
        scrapes.into_iter().nth(index).flatten(),
    )
}
