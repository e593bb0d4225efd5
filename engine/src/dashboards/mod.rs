//! The lab's charts as one definition: what each chart of a scenario shows, as PromQL over the
//! series `metrics/export.rs` serves and the instances' own `/metrics`. The Grafana dashboards
//! (`grafana.rs`) and the Prometheus scrape configs (`prometheus.rs`) in `dashboards/` are
//! generated from it (`generate.rs`, `sdlab dashboards [--check]`), and the API gives the
//! window the same titles, units and lines (`ScenarioDetail.charts`).
//!
//! The order is the window's: load (requests, latency, errors), signals (PostgreSQL sessions,
//! the services' pool, CPU, instances up), Redis's four when the topology has Redis, the
//! replica's three when it has one, then the scenario's own `[[panels]]`.

pub mod generate;
pub mod grafana;
pub mod prometheus;

use serde::Serialize;

use crate::catalog::{Panel, Scenario};

/// The Prometheus job of the lab's exporter, and of the scenario's instances.
pub const LAB_JOB: &str = "sdlab-lab";
pub const INSTANCES_JOB: &str = "sdlab-instances";

/// The range every `rate()` looks back over: ten 1 s scrapes (the generated configs scrape
/// every second, as the window samples), so a missed scrape or two leaves the line drawn.
pub const RATE_WINDOW: &str = "10s";

/// One chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Stable id (the window's chart id; the Grafana panel is found by it).
    pub id: String,
    pub title: String,
    /// The unit on the window's axis.
    pub unit: String,
    /// Grafana's unit id for the same values.
    pub grafana_unit: String,
    /// What the chart tells, in a sentence (the README and Grafana's panel description).
    pub description: String,
    pub series: Vec<ChartSeries>,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartSeries {
    pub label: String,
    /// The PromQL query; `{{lab_instance}}`-style legends are not used: a query that returns
    /// several series (one per instance) is labelled by Grafana from its `legend`.
    pub expr: String,
    /// Grafana's legend format (the label as is, or with `{{lab_instance}}`).
    pub legend: String,
}

/// Every chart of `scenario`, in the window's order.
pub fn charts(scenario: &Scenario) -> Vec<Chart> {
    let q = Query::new(&scenario.id);
    let mut charts = vec![
        chart("rps", "Requests/s", "req/s", "reqps",
            "What the load generator sent (its arrivals, the offered rate, dropped ones included) and what was answered 2xx/3xx (the achieved rate).",
            vec![
                line("sent", q.rate("sdlab_load_requests_total", "")),
                line("ok", q.rate("sdlab_load_ok_total", "")),
            ]),
        chart("latency", "Latency (from intended send time)", "ms", "s",
            "Each second's percentiles from the load generator's histogram, counted from when a request should have been sent (coordinated omission corrected).",
            ["0.5", "0.95", "0.99"].iter().zip(["p50", "p95", "p99"]).map(|(quantile, label)| {
                line(label, format!("sdlab_load_latency_seconds{{{},quantile=\"{quantile}\"}}", q.lab_sel()))
            }).collect()),
        chart("errors", "Errors/s", "errors/s", "reqps",
            "Failed requests per second by kind: timeout, connect, io, dropped (over max_in_flight), http_4xx, http_5xx.",
            vec![ChartSeries {
                label: "failed".to_string(),
                expr: format!("sum by (kind) (rate(sdlab_load_errors_total{{{}}}[{RATE_WINDOW}]))", q.lab_sel()),
                legend: "{{kind}}".to_string(),
            }]),
        chart("pg", "PostgreSQL sessions", "sessions", "short",
            "Sessions on the scenario's database by state (pg_stat_activity), and sessions opened per second (pg_stat_database.sessions).",
            vec![
                line("active", q.lab(&format!("sdlab_postgres_sessions{{{},state=\"active\"}}", q.lab_sel()))),
                line("idle", q.lab(&format!("sdlab_postgres_sessions{{{},state=\"idle\"}}", q.lab_sel()))),
                line("idle in transaction", q.lab(&format!("sdlab_postgres_sessions{{{},state=\"idle in transaction\"}}", q.lab_sel()))),
                line("new/s", q.rate("sdlab_postgres_sessions_opened_total", "")),
            ]),
        chart("pool", "Service: pool and in flight (all instances)", "count", "short",
            "The services' own gauges summed over the instances: pool connections in use, requests waiting for one, requests in flight.",
            vec![
                line("pool in use", q.instances_sum("db_pool_in_use")),
                line("pool waiting", q.instances_sum("db_pool_waiting")),
                line("in flight", q.instances_sum("http_requests_in_flight")),
            ]),
        chart("cpu", "CPU (cores busy)", "cores", "short",
            "CPU of the PostgreSQL server (postmaster and backends) and of each instance, in cores.",
            vec![
                line("PostgreSQL", q.lab(&format!("sdlab_postgres_cpu_cores{{{}}}", q.lab_sel()))),
                ChartSeries {
                    label: "instance".to_string(),
                    expr: format!("sdlab_instance_cpu_cores{{{}}}", q.lab_sel()),
                    legend: "instance {{lab_instance}}".to_string(),
                },
            ]),
        chart("up", "Instances up", "up", "short",
            "1 while an instance answers /metrics within 0.7 s (the lab's probe), 0 when it is down.",
            vec![ChartSeries {
                label: "instance".to_string(),
                expr: format!("sdlab_instance_up{{{}}}", q.lab_sel()),
                legend: "instance {{lab_instance}}".to_string(),
            }]),
    ];
    if scenario.topology.redis.is_some() {
        let hits = q.rate("sdlab_redis_keyspace_hits_total", "");
        let misses = q.rate("sdlab_redis_keyspace_misses_total", "");
        charts.extend([
            chart("redis-ops", "Redis: commands/s", "per s", "ops",
                "Commands Redis ran per second (INFO instantaneous_ops_per_sec), and the key lookups that hit and missed.",
                vec![
                    line("ops", q.lab(&format!("sdlab_redis_ops_per_second{{{}}}", q.lab_sel()))),
                    line("hits", hits.clone()),
                    line("misses", misses.clone()),
                ]),
            chart("redis-ratio", "Redis: hit ratio (hits / lookups)", "%", "percent",
                "The share of key lookups that found their key, over the last 10 s (no line without lookups).",
                vec![line("hit ratio", format!("100 * {hits} / ({hits} + {misses})"))]),
            chart("redis-memory", "Redis: memory", "MiB", "bytes",
                "Memory Redis uses against its maxmemory (0: no limit).",
                vec![
                    line("used", q.lab(&format!("sdlab_redis_used_memory_bytes{{{}}}", q.lab_sel()))),
                    line("maxmemory", q.lab(&format!("sdlab_redis_maxmemory_bytes{{{}}}", q.lab_sel()))),
                ]),
            chart("redis-pressure", "Redis: evictions, writes refused (OOM), clients", "per s / count", "short",
                "Keys evicted per second, writes refused per second for maxmemory (errorstat_OOM), and connected clients.",
                vec![
                    line("evicted/s", q.rate("sdlab_redis_evicted_keys_total", "")),
                    line("refused (OOM)/s", q.rate("sdlab_redis_rejected_writes_total", "")),
                    line("clients", q.lab(&format!("sdlab_redis_connected_clients{{{}}}", q.lab_sel()))),
                ]),
        ]);
    }
    if scenario
        .topology
        .postgres
        .as_ref()
        .is_some_and(|p| p.replicas > 0)
    {
        charts.extend([
            chart("replica-lag", "Replica: lag (how old its data is) and apply delay", "s", "s",
                "How old the data the replica serves is (0 when it replayed all the primary wrote), against its recovery_min_apply_delay.",
                vec![
                    line("replay lag", q.lab(&format!("sdlab_replica_lag_seconds{{{}}}", q.lab_sel()))),
                    line("apply delay", q.lab(&format!("sdlab_replica_apply_delay_seconds{{{}}}", q.lab_sel()))),
                ]),
            chart("replica-wal", "Replica: WAL written on the primary, not yet replayed", "KiB", "bytes",
                "WAL bytes the primary wrote that the replica has not replayed yet.",
                vec![line("behind", q.lab(&format!("sdlab_replica_lag_bytes{{{}}}", q.lab_sel())))]),
            chart("replica-cpu", "PostgreSQL CPU: primary and replica", "cores", "short",
                "CPU of the primary's and the replica's servers, in cores: reads moved to the replica show here.",
                vec![
                    line("primary", q.lab(&format!("sdlab_postgres_cpu_cores{{{}}}", q.lab_sel()))),
                    line("replica", q.lab(&format!("sdlab_replica_cpu_cores{{{}}}", q.lab_sel()))),
                ]),
        ]);
    }
    for (i, panel) in scenario.panels.iter().enumerate() {
        charts.push(scenario_panel(&q, i, panel));
    }
    charts
}

/// A `[[panels]]` chart: each series a /metrics name summed over its labels and the instances
/// (or one instance), as a value or a per-second rate, as the window draws it.
fn scenario_panel(q: &Query, i: usize, panel: &Panel) -> Chart {
    let series = panel
        .series
        .iter()
        .map(|s| {
            let only = s
                .instance
                .map(|n| format!(",lab_instance=\"{n}\""))
                .unwrap_or_default();
            let expr = if s.rate {
                format!(
                    "sum(rate({}{{{}{only}}}[{RATE_WINDOW}]))",
                    s.metric,
                    q.instances_sel()
                )
            } else {
                format!("sum({}{{{}{only}}})", s.metric, q.instances_sel())
            };
            line(&s.label, expr)
        })
        .collect();
    chart(
        &format!("panel-{i}"),
        &panel.title,
        &panel.unit,
        "short",
        "The scenario's own panel (scenario.toml [[panels]]), from the instances' /metrics.",
        series,
    )
}

fn chart(
    id: &str,
    title: &str,
    unit: &str,
    grafana_unit: &str,
    description: &str,
    series: Vec<ChartSeries>,
) -> Chart {
    Chart {
        id: id.to_string(),
        title: title.to_string(),
        unit: unit.to_string(),
        grafana_unit: grafana_unit.to_string(),
        description: description.to_string(),
        series,
    }
}

fn line(label: &str, expr: String) -> ChartSeries {
    ChartSeries {
        label: label.to_string(),
        expr,
        legend: label.to_string(),
    }
}

/// Label selectors for one scenario's series.
struct Query {
    sel: String,
}

impl Query {
    fn new(scenario: &str) -> Query {
        Query {
            sel: format!("scenario=\"{scenario}\""),
        }
    }

    fn lab_sel(&self) -> String {
        format!("job=\"{LAB_JOB}\",{}", self.sel)
    }

    fn instances_sel(&self) -> String {
        format!("job=\"{INSTANCES_JOB}\",{}", self.sel)
    }

    /// A lab series as is (the selector is already in `expr`).
    fn lab(&self, expr: &str) -> String {
        expr.to_string()
    }

    /// The per-second rate of a lab counter, summed over its series.
    fn rate(&self, name: &str, extra: &str) -> String {
        format!(
            "sum(rate({name}{{{}{extra}}}[{RATE_WINDOW}]))",
            self.lab_sel()
        )
    }

    fn instances_sum(&self, name: &str) -> String {
        format!("sum({name}{{{}}})", self.instances_sel())
    }
}
