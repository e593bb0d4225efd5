//! The lab's own series in the Prometheus text format, on a loopback-only port of the process
//! that owns the running lab (`sdlab start`, or `sdlab serve` while it runs a scenario): the
//! load generator's figures (from `load::LoadTally`, published by whichever process runs the
//! load), PostgreSQL's sessions, Redis INFO, the replica's lag, and each instance's up/down and
//! CPU, from the same 1 Hz [`Sample`] the window's charts are drawn from.
//!
//! Its own port, not the API's: `sdlab start` has no API, the API's token changes at every
//! launch (a scrape config would go stale with it), and what is served here is numbers only,
//! the same exposure as each instance's own `/metrics` beside it on loopback. The port is in
//! the run state (`RunState::metrics_port`), so `sdlab prometheus <id>` prints it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Sample;
use crate::load::{LoadTally, ERROR_KINDS};
use crate::process::RunState;

/// The PostgreSQL session states always shown (0 when none), so each panel line has a series.
pub const SESSION_STATES: [&str; 3] = ["active", "idle", "idle in transaction"];

/// The exporter of one running lab; stops serving when dropped.
pub struct Exporter {
    pub port: u16,
    latest: Arc<Mutex<Option<Sample>>>,
    cancel: CancellationToken,
}

#[derive(Clone)]
struct Shared {
    scenario: String,
    latest: Arc<Mutex<Option<Sample>>>,
    load_file: PathBuf,
}

impl Exporter {
    /// Serves `/metrics` on a free 127.0.0.1 port; `load_file` is where the scenario's load
    /// run publishes its tally (`LoadTally::path`). Needs a Tokio runtime that outlives it.
    pub async fn start(scenario: &str, load_file: PathBuf) -> std::io::Result<Exporter> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let latest = Arc::new(Mutex::new(None));
        let shared = Shared {
            scenario: scenario.to_string(),
            latest: Arc::clone(&latest),
            load_file,
        };
        let app = axum::Router::new()
            .route("/metrics", get(serve))
            .with_state(shared);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(Exporter {
            port,
            latest,
            cancel,
        })
    }

    /// [`Exporter::start`] for the lab this process owns, its port written into the run state
    /// (`sdlab prometheus <id>` reads it there), the load tally read from the run dir.
    pub async fn start_recorded(run_dir: &Path, scenario: &str) -> std::io::Result<Exporter> {
        let exporter = Exporter::start(scenario, LoadTally::path(run_dir, scenario)).await?;
        let path = RunState::path(run_dir, scenario);
        if let Some(mut state) = RunState::read(&path).filter(|s| s.owner_pid == std::process::id())
        {
            state.metrics_port = Some(exporter.port);
            state.write(&path)?;
        }
        Ok(exporter)
    }

    /// The newest second: what the next scrape shows.
    pub fn publish(&self, sample: &Sample) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(sample.clone());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve(State(shared): State<Shared>) -> impl IntoResponse {
    let sample = shared
        .latest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let load = LoadTally::read_fresh(&shared.load_file);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&shared.scenario, sample.as_ref(), load.as_ref()),
    )
}

/// One collector for a lab a long-lived process owns (the API's runner), feeding an exporter
/// (when its port can be had; the lab runs without one otherwise) and the returned watch,
/// which every metrics stream reads; both stop with `cancel`.
pub async fn collect_and_export(
    targets: super::Targets,
    run_dir: &Path,
    scenario: &str,
    cancel: CancellationToken,
) -> watch::Receiver<Option<Sample>> {
    let exporter = match Exporter::start_recorded(run_dir, scenario).await {
        Ok(exporter) => Some(exporter),
        Err(e) => {
            tracing::warn!("no Prometheus metrics for {scenario}: {e}");
            None
        }
    };
    let (tx, mut collected) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(super::collect(targets, tx, cancel));
    let (latest, samples) = watch::channel(None);
    tokio::spawn(async move {
        while let Some(sample) = collected.recv().await {
            if let Some(exporter) = &exporter {
                exporter.publish(&sample);
            }
            latest.send_replace(Some(sample));
        }
    });
    samples
}

/// The exposition text. Every series carries `scenario`; instance series carry
/// `lab_instance` (Prometheus keeps `instance` for the scrape target's address).
pub fn render(scenario: &str, sample: Option<&Sample>, load: Option<&LoadTally>) -> String {
    let mut out = Text {
        out: String::new(),
        scenario,
    };
    if let Some(l) = load {
        out.metric(
            "sdlab_load_requests_total",
            "counter",
            "Requests the load generator offered (arrivals, dropped ones included).",
        );
        out.line("sdlab_load_requests_total", &[], l.sent as f64);
        out.metric(
            "sdlab_load_ok_total",
            "counter",
            "Requests answered 2xx or 3xx (achieved).",
        );
        out.line("sdlab_load_ok_total", &[], l.ok as f64);
        out.metric(
            "sdlab_load_errors_total",
            "counter",
            "Failed requests by kind.",
        );
        for kind in ERROR_KINDS {
            let n = l.errors.get(kind).copied().unwrap_or(0);
            out.line("sdlab_load_errors_total", &[("kind", kind)], n as f64);
        }
        out.metric("sdlab_load_latency_seconds", "gauge", "The latest second's latency percentiles, counted from the intended send time (coordinated omission corrected).");
        for (q, v) in [("0.5", l.p50), ("0.95", l.p95), ("0.99", l.p99)] {
            out.line("sdlab_load_latency_seconds", &[("quantile", q)], v);
        }
        out.metric(
            "sdlab_load_in_flight",
            "gauge",
            "Requests sent and not yet answered.",
        );
        out.line("sdlab_load_in_flight", &[], l.in_flight as f64);
    }
    let Some(s) = sample else {
        return out.out;
    };
    out.metric(
        "sdlab_instance_up",
        "gauge",
        "1 when the instance answered /metrics within the scrape timeout.",
    );
    for svc in &s.services {
        let n = svc.instance.to_string();
        out.line(
            "sdlab_instance_up",
            &[("lab_instance", &n)],
            f64::from(u8::from(svc.up)),
        );
    }
    out.metric(
        "sdlab_instance_cpu_cores",
        "gauge",
        "CPU of the instance's process, in cores.",
    );
    for svc in &s.services {
        if let Some(cpu) = svc.cpu {
            out.line(
                "sdlab_instance_cpu_cores",
                &[("lab_instance", &svc.instance.to_string())],
                cpu,
            );
        }
    }
    if let Some(pg) = &s.postgres {
        out.metric(
            "sdlab_postgres_sessions",
            "gauge",
            "Sessions on the scenario's database by state (pg_stat_activity).",
        );
        for state in SESSION_STATES {
            let n = pg.by_state.get(state).copied().unwrap_or(0);
            out.line("sdlab_postgres_sessions", &[("state", state)], n as f64);
        }
        for (state, n) in pg
            .by_state
            .iter()
            .filter(|(k, _)| !SESSION_STATES.contains(&k.as_str()))
        {
            out.line("sdlab_postgres_sessions", &[("state", state)], *n as f64);
        }
        out.metric(
            "sdlab_postgres_sessions_opened_total",
            "counter",
            "Sessions ever opened on the scenario's database (pg_stat_database.sessions).",
        );
        out.line(
            "sdlab_postgres_sessions_opened_total",
            &[],
            pg.sessions_total as f64,
        );
        out.metric(
            "sdlab_postgres_client_sessions",
            "gauge",
            "Client sessions on the whole server, against max_connections.",
        );
        out.line(
            "sdlab_postgres_client_sessions",
            &[],
            pg.server_sessions as f64,
        );
        if let Some(max) = pg.max_connections {
            out.metric(
                "sdlab_postgres_max_connections",
                "gauge",
                "The server's max_connections.",
            );
            out.line("sdlab_postgres_max_connections", &[], max as f64);
        }
        if let Some(cpu) = pg.cpu {
            out.metric(
                "sdlab_postgres_cpu_cores",
                "gauge",
                "CPU of the PostgreSQL server (postmaster and backends), in cores.",
            );
            out.line("sdlab_postgres_cpu_cores", &[], cpu);
        }
    }
    if let Some(r) = &s.redis {
        let gauges = [
            (
                "sdlab_redis_ops_per_second",
                "gauge",
                "Redis INFO instantaneous_ops_per_sec.",
                r.ops_per_second as f64,
            ),
            (
                "sdlab_redis_keyspace_hits_total",
                "counter",
                "Redis INFO keyspace_hits.",
                r.hits_total as f64,
            ),
            (
                "sdlab_redis_keyspace_misses_total",
                "counter",
                "Redis INFO keyspace_misses.",
                r.misses_total as f64,
            ),
            (
                "sdlab_redis_used_memory_bytes",
                "gauge",
                "Redis INFO used_memory.",
                r.used_memory as f64,
            ),
            (
                "sdlab_redis_maxmemory_bytes",
                "gauge",
                "Redis INFO maxmemory (0: no limit).",
                r.maxmemory as f64,
            ),
            (
                "sdlab_redis_evicted_keys_total",
                "counter",
                "Redis INFO evicted_keys.",
                r.evicted_total as f64,
            ),
            (
                "sdlab_redis_rejected_writes_total",
                "counter",
                "Writes Redis refused for its maxmemory (errorstat_OOM).",
                r.rejected_writes as f64,
            ),
            (
                "sdlab_redis_connected_clients",
                "gauge",
                "Redis INFO connected_clients.",
                r.clients as f64,
            ),
        ];
        for (name, kind, help, value) in gauges {
            out.metric(name, kind, help);
            out.line(name, &[], value);
        }
    }
    if let Some(r) = &s.replica {
        out.metric(
            "sdlab_replica_streaming",
            "gauge",
            "1 when the primary shows the replica streaming.",
        );
        out.line(
            "sdlab_replica_streaming",
            &[],
            f64::from(u8::from(r.state == "streaming")),
        );
        if let Some(v) = r.replay_lag_seconds {
            out.metric(
                "sdlab_replica_lag_seconds",
                "gauge",
                "How old the replica's data is (0 when it replayed everything).",
            );
            out.line("sdlab_replica_lag_seconds", &[], v);
        }
        if let Some(v) = r.lag_bytes {
            out.metric(
                "sdlab_replica_lag_bytes",
                "gauge",
                "WAL written on the primary, not yet replayed on the replica.",
            );
            out.line("sdlab_replica_lag_bytes", &[], v as f64);
        }
        if let Some(v) = r.apply_delay_ms {
            out.metric(
                "sdlab_replica_apply_delay_seconds",
                "gauge",
                "The replica's recovery_min_apply_delay.",
            );
            out.line("sdlab_replica_apply_delay_seconds", &[], v as f64 / 1000.0);
        }
        if let Some(v) = r.cpu {
            out.metric(
                "sdlab_replica_cpu_cores",
                "gauge",
                "CPU of the replica's server, in cores.",
            );
            out.line("sdlab_replica_cpu_cores", &[], v);
        }
    }
    out.out
}

struct Text<'a> {
    out: String,
    scenario: &'a str,
}

impl Text<'_> {
    fn metric(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{name}{{scenario=\"{}\"", escape(self.scenario));
        for (k, v) in labels {
            let _ = write!(self.out, ",{k}=\"{}\"", escape(v));
        }
        let _ = writeln!(self.out, "}} {value}");
    }
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PgSample, PromText, ServiceSample};

    #[test]
    fn the_exposition_parses_back_with_every_line_labelled_by_scenario() {
        let sample = Sample {
            services: vec![ServiceSample {
                instance: 2,
                up: true,
                cpu: Some(0.25),
                ..Default::default()
            }],
            postgres: Some(PgSample {
                by_state: [("active".to_string(), 3)].into(),
                sessions_total: 40,
                ..Default::default()
            }),
            ..Default::default()
        };
        let load = LoadTally {
            sent: 100,
            ok: 90,
            p99: 0.5,
            ..Default::default()
        };
        let text = render("t1-01", Some(&sample), Some(&load));
        let parsed = PromText::parse(&text);
        assert!(parsed
            .samples
            .iter()
            .all(|(_, l, _)| l["scenario"] == "t1-01"));
        assert_eq!(
            parsed.sum_where("sdlab_postgres_sessions", "state", "active"),
            3.0
        );
        assert_eq!(
            parsed.sum_where("sdlab_postgres_sessions", "state", "idle in transaction"),
            0.0
        );
        assert_eq!(
            parsed.sum_where("sdlab_instance_cpu_cores", "lab_instance", "2"),
            0.25
        );
        assert_eq!(
            parsed.sum_where("sdlab_load_latency_seconds", "quantile", "0.99"),
            0.5
        );
        assert_eq!(parsed.sum("sdlab_load_errors_total"), Some(0.0));
        assert!(!render("t1-01", Some(&sample), None).contains("sdlab_load_"));
    }
}
