//! Killing an instance during the check load (`[check] kill_instance_at`), as a crash, an
//! out-of-memory kill or a deploy would: at that moment the instance that has served the most
//! requests so far (the one with most to lose: with `ip_hash` behind one client address, the
//! one that has every user) gets SIGKILL, with no chance to hand anything over. Its request
//! counters are read just before, so what it served still counts.

use std::time::{Duration, Instant};

use super::Killed;
use crate::lab::Running;
use crate::metrics::PromText;

/// Waits `at`, then kills the busiest instance of `running`. Returns it (None when no
/// instance answered) with its last `/metrics` scrape, 0-based index first.
pub async fn busiest_after(
    at: Duration,
    running: &Running,
    before: &[Option<PromText>],
) -> Option<(usize, Killed, PromText)> {
    let started = Instant::now();
    tokio::time::sleep(at).await;
    let ports: Vec<u16> = running.services.iter().map(|s| s.port).collect();
    let scrapes = crate::metrics::scrape_all(&ports, Duration::from_secs(1)).await;
    let served = |i: usize, now: &PromText| {
        let then = before
            .get(i)
            .and_then(|b| b.as_ref())
            .and_then(|b| b.sum(super::run::REQUESTS_TOTAL))
            .unwrap_or(0.0);
        now.sum(super::run::REQUESTS_TOTAL).unwrap_or(0.0) - then
    };
    let (index, scrape) = scrapes
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| s.ok().map(|s| (i, s)))
        .max_by(|(a, sa), (b, sb)| served(*a, sa).total_cmp(&served(*b, sb)))?;
    let service = running.services.get(index)?;
    crate::process::signal(service.pid, libc::SIGKILL);
    Some((
        index,
        Killed {
            instance: service.instance,
            at: started.elapsed(),
        },
        scrape,
    ))
}
