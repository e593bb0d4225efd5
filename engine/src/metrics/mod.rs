//! Metrics the lab collects once a second while a scenario runs: each service's `/metrics`
//! (Prometheus text), PostgreSQL's sessions by state and new sessions per second, and CPU and
//! memory per process from /proc. One `Sample` per second, merged by the caller with the load
//! generator's per-second stats.
//!
//! One file per source: `postgres.rs` (sessions, the server log), `replica.rs` (the
//! streaming replica's lag), `redis.rs` (Redis INFO), `prom.rs` (the Prometheus text
//! format), `http.rs` (the tiny HTTP client the scrapes and probes use), `export.rs` (the same
//! samples served back in that format, for Prometheus).
//!
//! Every instance is sampled on its own (`ServiceSample`: up or down, its `/metrics`, its
//! CPU), all at once and each with a short timeout, so a killed or hung instance shows as
//! down within the second instead of stalling the samples of the others.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub mod export;
mod http;
mod postgres;
mod prom;
mod redis;
mod replica;

pub use crate::procfs::{process_tree, CpuMeter};
pub use http::{http_call, http_call_as, http_get};
pub use postgres::{PgProbe, PgSample};
pub use prom::PromText;
pub(crate) use redis::redis_rejected_writes;
pub use redis::RedisSample;
use redis::{redis_sample, RedisCounters};
pub use replica::{replica_status, ReplicaProbe, ReplicaSample};

/// One second's view of the running scenario.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Since the collector started.
    pub at: Duration,
    pub services: Vec<ServiceSample>,
    pub postgres: Option<PgSample>,
    pub redis: Option<RedisSample>,
    /// The streaming replica's lag and apply delay, when the scenario has one.
    pub replica: Option<ReplicaSample>,
}

/// One instance's second.
#[derive(Debug, Clone, Default)]
pub struct ServiceSample {
    /// The instance number (1-based), as in `INSTANCE_ID` and the service's log file name.
    pub instance: u32,
    /// Port on 127.0.0.1 the instance listens on.
    pub port: u16,
    /// Whether the instance answered `/metrics` with 200 within [`SCRAPE_TIMEOUT`]. A killed,
    /// crashed or hung instance is down.
    pub up: bool,
    /// Why it is down (connection refused, no answer within the timeout, HTTP status...).
    pub down_reason: Option<String>,
    /// None when `/metrics` did not answer.
    pub metrics: Option<PromText>,
    /// CPU of this instance's process, in cores (None on the first sample or when it is gone).
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
}

/// How long one `/metrics` scrape may take before the instance counts as down. Short: a
/// sample a second must not wait on a hung instance.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_millis(700);

/// Scrapes every instance's `/metrics` at once, each within `timeout`: `Ok` with the parsed
/// text, or `Err` with why the instance is considered down.
pub async fn scrape_all(ports: &[u16], timeout: Duration) -> Vec<Result<PromText, String>> {
    let scrapes = ports.iter().map(|&port| async move {
        match http_get(port, "/metrics", timeout).await {
            Ok((200, body)) => Ok(PromText::parse(&body)),
            Ok((status, _)) => Err(format!("/metrics answered HTTP {status}")),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err("connection refused".to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    });
    futures_util::future::join_all(scrapes).await
}

/// What the collector watches.
#[derive(Debug, Clone)]
pub struct Targets {
    /// (instance, port, pid) of each service.
    pub services: Vec<(u32, u16, u32)>,
    /// PostgreSQL admin URL, the scenario's database and the postmaster pid.
    pub postgres: Option<(String, String, Option<u32>)>,
    /// The scenario's Redis port on 127.0.0.1.
    pub redis: Option<u16>,
    /// The streaming replica's superuser URL (`postgres` database) and postmaster pid.
    pub replica: Option<(String, Option<u32>)>,
}

/// Samples `targets` every second until `cancel`, sending each sample to `out`.
pub async fn collect(
    targets: Targets,
    out: tokio::sync::mpsc::UnboundedSender<Sample>,
    cancel: CancellationToken,
) {
    let started = Instant::now();
    let mut cpu = CpuMeter::default();
    let mut pg = match &targets.postgres {
        Some((url, db, _)) => PgProbe::connect(url, db).await.ok(),
        None => None,
    };
    let replica = match &targets.replica {
        Some((url, _)) => ReplicaProbe::connect(url).await.ok(),
        None => None,
    };
    let mut last_sessions: Option<(i64, Instant)> = None;
    let mut last_redis: Option<RedisCounters> = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let mut sample = Sample {
            at: started.elapsed(),
            ..Sample::default()
        };
        let ports: Vec<u16> = targets.services.iter().map(|s| s.1).collect();
        let scrapes = scrape_all(&ports, SCRAPE_TIMEOUT).await;
        for (&(instance, port, pid), scrape) in targets.services.iter().zip(scrapes) {
            let (c, rss) = cpu.measure(&[pid]);
            let (metrics, down_reason) = match scrape {
                Ok(m) => (Some(m), None),
                Err(why) => (None, Some(why)),
            };
            sample.services.push(ServiceSample {
                instance,
                port,
                up: metrics.is_some(),
                down_reason,
                metrics,
                cpu: c,
                rss_bytes: rss,
            });
        }
        if let (Some(probe), Some((_, _, postmaster))) = (pg.as_mut(), &targets.postgres) {
            // Bounded like the scrapes: a saturated server must not stall the instances' samples.
            if let Ok(Ok(mut s)) = tokio::time::timeout(SCRAPE_TIMEOUT, probe.sample()).await {
                let now = Instant::now();
                if let Some((prev, at)) = last_sessions {
                    let secs = now.duration_since(at).as_secs_f64().max(0.001);
                    s.opened_per_second = (s.sessions_total - prev).max(0) as f64 / secs;
                }
                last_sessions = Some((s.sessions_total, now));
                if let Some(pid) = postmaster {
                    let tree = process_tree(*pid);
                    let (c, rss) = cpu.measure(&tree);
                    s.cpu = c;
                    s.rss_bytes = rss;
                }
                sample.postgres = Some(s);
            }
        }
        if let (Some(probe), Some(replica), Some((_, pid))) =
            (pg.as_ref(), replica.as_ref(), &targets.replica)
        {
            if let Ok(Ok(mut r)) = tokio::time::timeout(SCRAPE_TIMEOUT, replica.sample(probe)).await
            {
                if let Some(pid) = pid {
                    let (c, rss) = cpu.measure(&process_tree(*pid));
                    r.cpu = c;
                    r.rss_bytes = rss;
                }
                sample.replica = Some(r);
            }
        }
        if let Some(port) = targets.redis {
            if let Ok(Ok(info)) =
                tokio::time::timeout(SCRAPE_TIMEOUT, redis_server_embedded::info(port)).await
            {
                let (r, counters) = redis_sample(&info, last_redis, Instant::now());
                last_redis = Some(counters);
                sample.redis = Some(r);
            }
        }
        if out.send(sample).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dead_or_silent_instance_is_down_with_its_reason_not_waited_on() {
        // A port nobody listens on (bound, then closed), and one that accepts but never answers.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = silent.accept().await {
                conns.push(c);
            }
        });
        let scrapes = scrape_all(&[closed, silent_port], Duration::from_millis(300)).await;
        held.abort();
        assert_eq!(scrapes[0].as_ref().unwrap_err(), "connection refused");
        assert!(
            scrapes[1]
                .as_ref()
                .unwrap_err()
                .contains("no answer within"),
            "{:?}",
            scrapes[1]
        );
    }
}
