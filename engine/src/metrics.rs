//! Metrics the lab collects once a second while a scenario runs: each service's `/metrics`
//! (Prometheus text), PostgreSQL's sessions by state and new sessions per second, and CPU and
//! memory per process from /proc. One `Sample` per second, merged by the caller with the load
//! generator's per-second stats.
//!
//! Every instance is sampled on its own (`ServiceSample`: up or down, its `/metrics`, its
//! CPU), all at once and each with a short timeout, so a killed or hung instance shows as
//! down within the second instead of stalling the samples of the others.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

pub use crate::procfs::{process_tree, CpuMeter};

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

/// One second of the streaming replica: how far behind the primary it is and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaSample {
    /// `pg_stat_replication.state` on the primary (`streaming`, `catchup`, ...), or `down`
    /// when the primary shows no standby on the slot.
    pub state: String,
    /// How old the data the replica serves is: 0 when it has replayed all the primary wrote;
    /// else the primary's `replay_lag` (flush on the primary to replay on the standby,
    /// reported every second), or, before a report, the time since the last replayed
    /// commit. None when the standby cannot be asked.
    pub replay_lag_seconds: Option<f64>,
    /// WAL the primary has written and the standby not yet replayed:
    /// `pg_current_wal_lsn()` on the primary minus `pg_last_wal_replay_lsn()` on the standby.
    pub lag_bytes: Option<i64>,
    /// The standby's current `recovery_min_apply_delay`.
    pub apply_delay_ms: Option<i64>,
    /// The replica's CPU (cores) and memory, over its postmaster and children (None on the
    /// first sample, or when this process cannot see its processes).
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
}

/// One second of the scenario's Redis, from INFO: rates are per second since the previous
/// sample (None on the first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisSample {
    pub hits_per_second: Option<f64>,
    pub misses_per_second: Option<f64>,
    /// Hits over lookups in that second (None without lookups).
    pub hit_ratio: Option<f64>,
    pub used_memory: u64,
    /// 0: no limit.
    pub maxmemory: u64,
    pub evicted_per_second: Option<f64>,
    /// Writes refused with OOM since the start (`errorstat_OOM`; 0 before Redis 6.2).
    pub rejected_writes: u64,
    pub ops_per_second: u64,
    pub clients: u64,
}

/// The INFO counters a [`RedisSample`]'s rates come from.
#[derive(Debug, Clone, Copy)]
struct RedisCounters {
    hits: u64,
    misses: u64,
    evicted: u64,
    at: Instant,
}

/// Commands Redis refused for its maxmemory since it started, from INFO's
/// `errorstat_OOM:count=3,...` (0 when none was, and before Redis 6.2).
pub(crate) fn redis_rejected_writes(info: &BTreeMap<String, String>) -> u64 {
    info.get("errorstat_OOM")
        .and_then(|v| v.strip_prefix("count="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A [`RedisSample`] from one INFO (and the previous one's counters, for the rates).
fn redis_sample(
    info: &BTreeMap<String, String>,
    previous: Option<RedisCounters>,
    now: Instant,
) -> (RedisSample, RedisCounters) {
    let n = |k: &str| {
        info.get(k)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let rejected = redis_rejected_writes(info);
    let counters = RedisCounters {
        hits: n("keyspace_hits"),
        misses: n("keyspace_misses"),
        evicted: n("evicted_keys"),
        at: now,
    };
    let rate = |f: fn(&RedisCounters) -> u64| {
        previous.map(|p| {
            let secs = now.duration_since(p.at).as_secs_f64().max(0.001);
            f(&counters).saturating_sub(f(&p)) as f64 / secs
        })
    };
    let hits = rate(|c| c.hits);
    let misses = rate(|c| c.misses);
    let sample = RedisSample {
        hits_per_second: hits,
        misses_per_second: misses,
        hit_ratio: match (hits, misses) {
            (Some(h), Some(m)) if h + m > 0.0 => Some(h / (h + m)),
            _ => None,
        },
        used_memory: n("used_memory"),
        maxmemory: n("maxmemory"),
        evicted_per_second: rate(|c| c.evicted),
        rejected_writes: rejected,
        ops_per_second: n("instantaneous_ops_per_sec"),
        clients: n("connected_clients"),
    };
    (sample, counters)
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

#[derive(Debug, Clone, Default)]
pub struct PgSample {
    /// Sessions of the scenario's database by `pg_stat_activity.state` (active, idle, ...).
    pub by_state: BTreeMap<String, i64>,
    /// `pg_stat_database.sessions`: sessions ever opened on the database.
    pub sessions_total: i64,
    /// New sessions per second since the previous sample.
    pub opened_per_second: f64,
    /// CPU of the postmaster and all its backends, in cores.
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
    /// Client sessions on the whole server (every database, this probe excluded), against
    /// `max_connections`: the ceiling that "too many clients" errors hit.
    pub server_sessions: i64,
    /// The server's `max_connections`.
    pub max_connections: Option<i64>,
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

/// A long-lived monitoring connection to PostgreSQL (one session, so it does not count in
/// the sessions it measures).
pub struct PgProbe {
    client: tokio_postgres::Client,
    database: String,
}

impl PgProbe {
    pub async fn connect(
        admin_url: &str,
        database: &str,
    ) -> Result<PgProbe, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(PgProbe {
            client,
            database: database.to_string(),
        })
    }

    pub async fn sample(&mut self) -> Result<PgSample, tokio_postgres::Error> {
        let mut s = PgSample::default();
        let rows = self
            .client
            .query(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY 1",
                &[&self.database],
            )
            .await?;
        for row in rows {
            s.by_state.insert(row.get(0), row.get(1));
        }
        let row = self
            .client
            .query_one(
                "SELECT count(*) FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()), \
                        current_setting('max_connections')::bigint FROM pg_stat_activity",
                &[],
            )
            .await?;
        s.server_sessions = row.get(0);
        s.max_connections = Some(row.get(1));
        s.sessions_total = self.sessions_total().await?;
        Ok(s)
    }

    /// The size in bytes of the server's log (`start.log` in the data directory, where the
    /// lab's PostgreSQL writes it), read through SQL so an attached lab process can read it
    /// too. Needs a superuser session, which the lab's admin URL is.
    pub async fn server_log_size(&self) -> Result<i64, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(
                "SELECT coalesce((pg_stat_file('start.log', true)).size, 0)",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// How many times `needle` occurs in the server's log after byte `from`.
    pub async fn count_in_server_log(
        &self,
        from: i64,
        needle: &str,
    ) -> Result<u64, tokio_postgres::Error> {
        let size = self.server_log_size().await?;
        if size <= from {
            return Ok(0);
        }
        let row = self
            .client
            .query_one(
                "SELECT pg_read_binary_file('start.log', $1, $2, true)",
                &[&from, &(size - from)],
            )
            .await?;
        let bytes: Option<Vec<u8>> = row.get(0);
        let text = String::from_utf8_lossy(bytes.as_deref().unwrap_or_default());
        Ok(text.matches(needle).count() as u64)
    }

    /// `pg_stat_database.sessions` for the database. Sessions report their start when they
    /// flush statistics (at the latest when they end), so short-lived ones are all counted.
    pub async fn sessions_total(&self) -> Result<i64, tokio_postgres::Error> {
        // Statistics are cached per transaction; a fresh snapshot sees other sessions' flushes.
        self.client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await?;
        let row = self
            .client
            .query_one(
                "SELECT coalesce(sum(sessions), 0)::bigint FROM pg_stat_database WHERE datname = $1",
                &[&self.database],
            )
            .await?;
        Ok(row.get(0))
    }
}

/// A long-lived monitoring connection to the streaming replica; the primary's side of the lag
/// is read through the primary's [`PgProbe`] (no second lab session on the primary).
pub struct ReplicaProbe {
    standby: tokio_postgres::Client,
}

impl ReplicaProbe {
    pub async fn connect(replica_admin_url: &str) -> Result<ReplicaProbe, tokio_postgres::Error> {
        let (standby, connection) =
            tokio_postgres::connect(replica_admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(ReplicaProbe { standby })
    }

    /// The replica's lag and apply delay now (CPU and memory are the collector's).
    pub async fn sample(&self, primary: &PgProbe) -> Result<ReplicaSample, tokio_postgres::Error> {
        let row = primary
            .client
            .query_one(
                "SELECT pg_current_wal_lsn()::text,                    (SELECT state FROM pg_stat_replication WHERE application_name = $1),                    (SELECT extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication                     WHERE application_name = $1)",
                &[&crate::lab::REPLICA_SLOT],
            )
            .await?;
        let primary_lsn: String = row.get(0);
        let state: Option<String> = row.get(1);
        let reported_lag: Option<f64> = row.get(2);
        let row = self
            .standby
            .query_one(
                "SELECT pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn())::bigint,                    extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,                    (SELECT setting::bigint FROM pg_settings                     WHERE name = 'recovery_min_apply_delay')",
                &[&primary_lsn],
            )
            .await?;
        let lag_bytes: Option<i64> = row.get(0);
        let since_replay: Option<f64> = row.get(1);
        let lag_bytes = lag_bytes.map(|b| b.max(0));
        Ok(ReplicaSample {
            state: state.unwrap_or_else(|| "down".to_string()),
            replay_lag_seconds: replica_lag_seconds(lag_bytes, reported_lag, since_replay),
            lag_bytes,
            apply_delay_ms: row.get(2),
            cpu: None,
            rss_bytes: None,
        })
    }
}

/// The replica's lag in seconds: none when it has replayed everything (an idle primary's
/// `replay_lag` keeps its last value; the time since the last replayed commit keeps growing),
/// else what the primary measured, else the time since the last replayed commit.
fn replica_lag_seconds(
    lag_bytes: Option<i64>,
    reported: Option<f64>,
    since_replay: Option<f64>,
) -> Option<f64> {
    match lag_bytes {
        Some(0) => Some(0.0),
        Some(_) => reported.or(since_replay).map(|s| s.max(0.0)),
        None => None,
    }
}

/// The replica's state now, for a one-off look (`sdlab replica <id>`): connects to both
/// servers, samples once and disconnects.
///
/// # Errors
/// When either server cannot be reached.
pub async fn replica_status(
    primary_admin_url: &str,
    replica_admin_url: &str,
) -> Result<ReplicaSample, tokio_postgres::Error> {
    let primary = PgProbe::connect(primary_admin_url, "postgres").await?;
    let replica = ReplicaProbe::connect(replica_admin_url).await?;
    replica.sample(&primary).await
}

/// Parsed Prometheus text exposition: `(name, labels, value)` per sample line.
#[derive(Debug, Clone, Default)]
pub struct PromText {
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl PromText {
    pub fn parse(text: &str) -> PromText {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(parse_line)
            .collect();
        PromText { samples }
    }

    /// Whether any sample has this metric name (histograms count by their `_bucket`,
    /// `_sum` or `_count` series, too).
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| {
            n == name
                || n.strip_prefix(name)
                    .is_some_and(|rest| matches!(rest, "_bucket" | "_sum" | "_count"))
        })
    }

    /// The sum of the samples of this name whose `label` is `value` (0 when none is).
    pub fn sum_where(&self, name: &str, label: &str, value: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, labels, _)| n == name && labels.get(label).is_some_and(|v| v == value))
            .map(|(_, _, v)| v)
            .sum()
    }

    /// The sum of every sample of this exact name (over all label sets).
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = None;
        for (n, _, v) in &self.samples {
            if n == name {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }
}

fn parse_line(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (name_labels, rest) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}')?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], &line[space..])
        }
    };
    let value: f64 = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let mut labels = BTreeMap::new();
    let name = match name_labels.find('{') {
        None => name_labels.to_string(),
        Some(open) => {
            let inner = &name_labels[open + 1..name_labels.len() - 1];
            for pair in split_labels(inner) {
                if let Some((k, v)) = pair.split_once('=') {
                    labels.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
                }
            }
            name_labels[..open].to_string()
        }
    };
    Some((name, labels, value))
}

/// Splits `a="x",b="y,z"` on the commas outside quotes.
fn split_labels(inner: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        out.push(&inner[start..]);
    }
    out
}

/// A minimal HTTP/1.0 GET to 127.0.0.1:`port` returning status and body. Used for readiness
/// and scraping, where one short-lived connection per call is exactly what is wanted.
pub async fn http_get(port: u16, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    http_call(port, "GET", path, None, timeout).await
}

/// One HTTP/1.0 request to 127.0.0.1:`port` on its own connection (a JSON `body` when given),
/// returning status and body: the lab's own requests (readiness, scrapes, verified answers).
pub async fn http_call(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    http_call_as(port, method, path, body, None, timeout).await
}

/// [`http_call`] as a logged-in user: `Authorization: Bearer <token>` when `token` is given.
pub async fn http_call_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut request =
            format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        match body {
            Some(b) => request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => request.push_str("\r\n"),
        }
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {timeout:?}"),
        )
    })?
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_replica_that_replayed_everything_has_no_lag_whatever_its_last_report_said() {
        assert_eq!(
            replica_lag_seconds(Some(0), Some(2.0), Some(60.0)),
            Some(0.0)
        );
        assert_eq!(
            replica_lag_seconds(Some(512), Some(0.6), Some(60.0)),
            Some(0.6)
        );
        assert_eq!(replica_lag_seconds(Some(512), None, Some(1.5)), Some(1.5));
        assert_eq!(replica_lag_seconds(None, Some(1.0), None), None);
    }
    use super::*;

    #[test]
    fn redis_rates_and_the_hit_ratio_come_from_two_infos() {
        let info = |hits: u64, misses: u64, evicted: u64| {
            BTreeMap::from([
                ("keyspace_hits".to_string(), hits.to_string()),
                ("keyspace_misses".to_string(), misses.to_string()),
                ("evicted_keys".to_string(), evicted.to_string()),
                ("used_memory".to_string(), "1048576".to_string()),
                ("maxmemory".to_string(), "2097152".to_string()),
                ("errorstat_OOM".to_string(), "count=7".to_string()),
                ("instantaneous_ops_per_sec".to_string(), "120".to_string()),
                ("connected_clients".to_string(), "3".to_string()),
            ])
        };
        let t0 = Instant::now();
        let (first, c) = redis_sample(&info(10, 10, 0), None, t0);
        assert_eq!((first.hits_per_second, first.hit_ratio), (None, None));
        assert_eq!((first.rejected_writes, first.clients), (7, 3));
        let (second, _) = redis_sample(&info(100, 20, 5), Some(c), t0 + Duration::from_secs(2));
        assert_eq!(second.hits_per_second, Some(45.0));
        assert_eq!(second.misses_per_second, Some(5.0));
        assert_eq!(second.hit_ratio, Some(0.9));
        assert_eq!(second.evicted_per_second, Some(2.5));
        assert_eq!((second.used_memory, second.maxmemory), (1 << 20, 2 << 20));
    }

    #[test]
    fn prometheus_text_parses_names_labels_and_values() {
        let text = "# HELP db_pool_size connections\n# TYPE db_pool_size gauge\ndb_pool_size 10\n\
                    http_requests_total{route=\"/feed\",status=\"200\"} 42\n\
                    http_requests_total{route=\"/a,b\",status=\"500\"} 3\n\
                    http_request_duration_seconds_bucket{le=\"+Inf\"} 45\n";
        let p = PromText::parse(text);
        assert_eq!(p.sum("db_pool_size"), Some(10.0));
        assert_eq!(p.sum("http_requests_total"), Some(45.0));
        assert!(p.has("http_request_duration_seconds"));
        assert!(!p.has("db_pool_waiting"));
        let labels = &p.samples[2].1;
        assert_eq!(labels.get("route").map(String::as_str), Some("/a,b"));
    }

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
