//! The per-kind connection probe: after the check load, each request kind of the check's mix
//! is sent alone, a few requests at a low fixed rate, with PostgreSQL's session counter read
//! before and after, so the connections line can say which endpoint opens a connection per
//! request. Averaged over the whole mix, a pool used by the most frequent endpoint hid the
//! others (t1-01: the feed pooled at 60% of the mix, the rest connecting per request, 0.4).
//!
//! Why after the load: the pools are warm, as they are in production (before it, a pool
//! opening its connections for the first time would be charged to whichever kind came first),
//! and the load's own figures are not disturbed. The kinds follow each other within a few
//! seconds of the load, so only a pool whose idle timeout is shorter than that reopens
//! anything, and then at most `IN_FLIGHT` connections per kind (the probe never has more
//! requests in flight): 4 of 20 requests, 0.20, under t1-01's 0.5 line, where a handler that
//! connects per request measures 1.00. (A kind so slow that fewer than 8 of its arrivals find
//! a free slot, over 250 ms each, could fail on 4 reopened connections; it fails the latency
//! lines anyway.)
//!
//! Writes: a POST kind creates up to `REQUESTS` rows in the check's database, as the load does;
//! the check's database is a copy, and 20 rows change no plan.
//! Cost: per kind `REQUESTS / RATE` (0.5 s) plus `SETTLE` (0.3 s) and the last responses,
//! about 2.7 s for t1-01's three kinds (measured); at most the profile's timeout more per kind
//! when the service stalls.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::KindSessions;
use crate::catalog::Profile;
use crate::load::{self, ErrorKind, LoadPlan, Model, Stage};
use crate::metrics::PgProbe;

/// Requests per kind: enough that one reopened connection is a small fraction (0.05).
pub const REQUESTS: u32 = 20;
/// Arrivals per second: low enough that a warm pool serves them with one or two connections.
const RATE: f64 = 40.0;
/// At most this many requests in flight (more arrivals are dropped and not counted): bounds
/// the connections a pool may legitimately open during the probe.
const IN_FLIGHT: usize = 4;
/// A session is counted in `pg_stat_database` when its backend first flushes statistics: when
/// it goes idle after connecting, before the service can even send its first query (or, if
/// that flush found the entry locked, when the backend exits, right after the service drops a
/// connection of its own). So the count is complete once the responses are in, give or take
/// the exits; this covers them on a busy 2-core machine (measured on t1-01: exact counts,
/// 20 of 20 or 0 of 20, with the lab's golden test running beside other builds).
const SETTLE: Duration = Duration::from_millis(300);
/// A counter read that takes longer than this is not waited on (the kind is not measured).
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes each kind of `profile`'s mix in turn against `targets`. A kind whose counter could
/// not be read or whose load could not run is None; after `cancel`, the remaining kinds too.
pub async fn sessions_per_kind(
    pg: &PgProbe,
    profile: &Profile,
    targets: &[String],
    sessions: Option<&load::Sessions>,
    cancel: &CancellationToken,
) -> BTreeMap<String, Option<KindSessions>> {
    let sessions = sessions.cloned();
    let mut out = BTreeMap::new();
    let mut before = read(pg).await;
    for template in profile.mix.iter().filter(|t| t.weight > 0) {
        if cancel.is_cancelled() {
            out.insert(template.name.clone(), None);
            continue;
        }
        let plan = LoadPlan {
            targets: targets.to_vec(),
            stages: vec![Stage::constant(
                Duration::from_secs_f64(f64::from(REQUESTS) / RATE),
                RATE,
            )],
            mix: vec![load::RequestTemplate {
                weight: 1,
                ..template.clone()
            }],
            timeout: profile.timeout,
            max_in_flight: IN_FLIGHT,
            seed: 1,
            model: Model::Open,
            sessions: sessions.clone(),
        };
        let summary = load::run(plan, None, cancel.clone()).await;
        tokio::time::sleep(SETTLE).await;
        let after = read(pg).await;
        let measured = match (before, after, summary) {
            (Some(b), Some(a), Ok(s)) => {
                let dropped = s
                    .errors
                    .get(ErrorKind::Dropped.label())
                    .copied()
                    .unwrap_or(0);
                Some(KindSessions {
                    sessions: a.saturating_sub(b).max(0) as u64,
                    requests: s.sent.saturating_sub(dropped),
                })
            }
            _ => None,
        };
        out.insert(template.name.clone(), measured);
        before = after;
    }
    out
}

async fn read(pg: &PgProbe) -> Option<i64> {
    match tokio::time::timeout(READ_TIMEOUT, pg.sessions_total()).await {
        Ok(Ok(n)) => Some(n),
        _ => None,
    }
}
