//! Checks a fix: runs the scenario's check load against the running service, gathers what the
//! check lines need (latency, errors, new PostgreSQL sessions, the service's metrics, query
//! plans) into `Observations`, and judges each line into a table of measured vs required.
//!
//! `evaluate` is pure: the same observations always give the same table, which is what the
//! unit tests pin down. Lines judge behaviour and plans, never names: any index that serves
//! the query passes, whatever it is called.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::catalog::{CheckLine, Percentile, SloMetric};
use crate::load::{self, RunSummary, SecondStats};
use crate::metrics::{PgProbe, PromText};
use crate::topology::Running;

/// One judged line of the check table.
#[derive(Debug, Clone, PartialEq)]
pub struct LineResult {
    pub label: String,
    pub measured: String,
    pub required: String,
    pub passed: bool,
    /// The scenario's hint, only when the line failed.
    pub hint: Option<String>,
}

/// The outcome of a check.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub scenario: String,
    /// Whose code was checked ("your code", "the solution", ...).
    pub code: String,
    pub lines: Vec<LineResult>,
    pub passed: bool,
    pub summary: Option<RunSummary>,
    /// Lines from the service's log that name errors, for the symptom.
    pub log_errors: Vec<String>,
}

/// Latency and errors of one slice of the run (the whole run, or one request of the mix).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestObs {
    pub sent: u64,
    pub failed: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl RequestObs {
    fn percentile(&self, p: Percentile) -> Duration {
        match p {
            Percentile::P50 => self.p50,
            Percentile::P90 => self.p90,
            Percentile::P95 => self.p95,
            Percentile::P99 => self.p99,
        }
    }

    fn error_rate(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.failed as f64 / self.sent as f64
        }
    }
}

/// What a check measured, whatever the service.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub overall: RequestObs,
    pub per_request: BTreeMap<String, RequestObs>,
    /// Errors by kind over the run ("timeout", "http 503", ...).
    pub errors: BTreeMap<String, u64>,
    pub offered_rate: f64,
    /// Successful responses per second.
    pub achieved_rate: f64,
    /// New PostgreSQL sessions on the service's database during the load.
    pub sessions_opened: Option<u64>,
    /// The last scrape of each instance's `/metrics` (None when it did not answer).
    pub metrics: Vec<Option<PromText>>,
    /// Why each instance that did not answer is down, e.g. "instance 2: connection refused".
    pub down: Vec<String>,
    /// Requests each instance served during the check load (the rise of its
    /// `http_requests_total`); None for an instance that did not answer before and after.
    pub served: Vec<Option<f64>>,
    /// Connections PostgreSQL refused ("sorry, too many clients already") during the load,
    /// counted in the server's log; None when the log could not be read.
    pub refused_connections: Option<u64>,
    pub max_connections: u32,
    /// Plan facts by check-line name (Err: why the plan could not be read).
    pub plans: BTreeMap<String, Result<PlanFacts, String>>,
}

/// What matters in a query plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanFacts {
    /// Tables read through an index (Index Scan, Index Only Scan, Bitmap Index Scan).
    pub indexed: BTreeSet<String>,
    /// Tables read in full.
    pub seq_scanned: BTreeSet<String>,
    /// Whether any Sort or Incremental Sort node runs.
    pub sorts: bool,
    /// The plan's nodes, outermost first, e.g. "Limit > Nested Loop > Index Scan Backward using posts_created_at_idx on posts".
    pub outline: String,
    /// Shared buffers (hit + read) of the whole plan, when it was EXPLAIN ANALYZEd with BUFFERS.
    pub buffers: Option<u64>,
}

/// Runs the check load against `running` and judges every line.
pub async fn run(
    running: &Running,
    ticks: Option<tokio::sync::mpsc::UnboundedSender<SecondStats>>,
    cancel: CancellationToken,
) -> Result<CheckReport, CheckError> {
    let scenario = &running.scenario;
    let profile = &scenario.check.profile;
    let targets = running.load_targets();
    if targets.is_empty() {
        return Err(CheckError::Setup("no service is running".to_string()));
    }
    let mut probe = match running.database.as_ref() {
        Some(db) => Some(
            PgProbe::connect(
                &db.admin_url(),
                &running.targets().postgres.map(|p| p.1).unwrap_or_default(),
            )
            .await
            .map_err(|e| CheckError::Setup(format!("connect to PostgreSQL: {e}")))?,
        ),
        None => None,
    };
    let sessions_before = match probe.as_mut() {
        Some(p) => p.sessions_total().await.ok(),
        None => None,
    };
    let log_before = match probe.as_mut() {
        Some(p) => p.server_log_size().await.ok(),
        None => None,
    };
    // Each instance's request counter before the load, so the check sees who served it.
    let ports: Vec<u16> = running.services.iter().map(|s| s.port).collect();
    let served_before: Vec<Option<f64>> =
        crate::metrics::scrape_all(&ports, Duration::from_secs(2))
            .await
            .into_iter()
            // An instance that has served nothing yet exports no counter: that is 0.
            .map(|m| m.ok().map(|m| m.sum(REQUESTS_TOTAL).unwrap_or(0.0)))
            .collect();
    let plan = profile.plan(targets, None, None);
    let summary = load::run(plan, ticks, cancel)
        .await
        .map_err(|e| CheckError::Load(e.to_string()))?;
    // Sessions report themselves to pg_stat_database within a second; let them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sessions_after = match probe.as_mut() {
        Some(p) => p.sessions_total().await.ok(),
        None => None,
    };
    let refused_connections = match (probe.as_mut(), log_before) {
        (Some(p), Some(from)) => p.count_in_server_log(from, TOO_MANY_CLIENTS).await.ok(),
        _ => None,
    };
    // All instances at once, each with a short timeout: a dead one is reported, not waited on.
    let mut metrics = Vec::new();
    let mut down = Vec::new();
    let scrapes = crate::metrics::scrape_all(&ports, Duration::from_secs(2)).await;
    for (service, scrape) in running.services.iter().zip(scrapes) {
        match scrape {
            Ok(m) => metrics.push(Some(m)),
            Err(why) => {
                down.push(format!("instance {}: {why}", service.instance));
                metrics.push(None);
            }
        }
    }
    let mut plans = BTreeMap::new();
    for line in &scenario.check.lines {
        if let CheckLine::Plan {
            name,
            query,
            max_buffers,
            ..
        } = line
        {
            let facts = match running.database_url() {
                Some(url) => explain(&url, query, max_buffers.is_some()).await,
                None => Err("no database".to_string()),
            };
            plans.insert(name.clone(), facts);
        }
    }
    let obs = Observations {
        overall: RequestObs {
            sent: summary.sent,
            failed: summary.failed,
            p50: summary.latency.p50,
            p90: summary.latency.p90,
            p95: summary.latency.p95,
            p99: summary.latency.p99,
        },
        per_request: summary
            .per_template
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    RequestObs {
                        sent: t.sent,
                        failed: t.failed,
                        p50: t.latency.p50,
                        p90: t.latency.p90,
                        p95: t.latency.p95,
                        p99: t.latency.p99,
                    },
                )
            })
            .collect(),
        errors: summary.errors.clone(),
        offered_rate: summary.offered_rate,
        achieved_rate: summary.achieved_rate,
        sessions_opened: match (sessions_before, sessions_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).max(0) as u64),
            _ => None,
        },
        served: served_before
            .iter()
            .zip(&metrics)
            .map(|(before, after)| {
                match (
                    before,
                    after.as_ref().map(|m| m.sum(REQUESTS_TOTAL).unwrap_or(0.0)),
                ) {
                    (Some(b), Some(a)) => Some((a - b).max(0.0)),
                    _ => None,
                }
            })
            .collect(),
        metrics,
        down,
        refused_connections,
        max_connections: scenario
            .topology
            .postgres
            .as_ref()
            .map(|p| p.max_connections())
            .unwrap_or(100),
        plans,
    };
    let lines = evaluate(&scenario.check.lines, &obs);
    let log_errors = running
        .services
        .iter()
        .flat_map(|s| error_lines(&s.logs(400)))
        .collect();
    Ok(CheckReport {
        scenario: scenario.id.clone(),
        code: String::new(),
        passed: lines.iter().all(|l| l.passed),
        lines,
        summary: Some(summary),
        log_errors,
    })
}

/// The kit's request counter (every instance exports it), for the balance line.
const REQUESTS_TOTAL: &str = "http_requests_total";

/// What PostgreSQL logs when it refuses a connection over `max_connections`.
const TOO_MANY_CLIENTS: &str = "too many clients already";

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot run the check: {0}")]
    Setup(String),
    #[error("the check load failed: {0}")]
    Load(String),
}

/// Judges each line against the observations.
pub fn evaluate(lines: &[CheckLine], obs: &Observations) -> Vec<LineResult> {
    lines.iter().map(|line| evaluate_line(line, obs)).collect()
}

fn evaluate_line(line: &CheckLine, obs: &Observations) -> LineResult {
    let result =
        |label: String, measured: String, required: String, passed: bool, hint: &str| LineResult {
            label,
            measured,
            required,
            passed,
            hint: (!passed).then(|| hint.to_string()),
        };
    match line {
        CheckLine::Slo {
            metric,
            request,
            hint,
        } => {
            let (slice, scope) = match request {
                Some(name) => (
                    obs.per_request.get(name).cloned().unwrap_or_default(),
                    format!(" of {name}"),
                ),
                None => (obs.overall.clone(), String::new()),
            };
            match metric {
                SloMetric::Latency { percentile, max } => {
                    let got = slice.percentile(*percentile);
                    result(
                        format!("{} latency{scope}", percentile.label()),
                        fmt_duration(got),
                        format!("<= {}", fmt_duration(*max)),
                        slice.sent > 0 && got <= *max,
                        hint,
                    )
                }
                SloMetric::ErrorRate { max } => {
                    let rate = slice.error_rate();
                    let mut measured = format!("{:.1}% of {}", rate * 100.0, slice.sent);
                    if request.is_none() && !obs.errors.is_empty() {
                        let mut kinds: Vec<_> = obs.errors.iter().collect();
                        kinds.sort_by(|a, b| b.1.cmp(a.1));
                        let top: Vec<String> = kinds
                            .iter()
                            .take(3)
                            .map(|(k, n)| format!("{k}: {n}"))
                            .collect();
                        measured.push_str(&format!(" ({})", top.join(", ")));
                    }
                    result(
                        format!("error rate{scope}"),
                        measured,
                        format!("<= {:.1}%", max * 100.0),
                        slice.sent > 0 && rate <= *max,
                        hint,
                    )
                }
                SloMetric::AchievedRate { min_ratio } => {
                    let need = obs.offered_rate * min_ratio;
                    result(
                        "successful requests/s".to_string(),
                        format!(
                            "{:.1}/s of {:.1}/s offered",
                            obs.achieved_rate, obs.offered_rate
                        ),
                        format!(">= {need:.1}/s"),
                        obs.offered_rate > 0.0 && obs.achieved_rate >= need,
                        hint,
                    )
                }
            }
        }
        CheckLine::Plan {
            name,
            uses_index_on,
            no_sort,
            max_buffers,
            hint,
            ..
        } => {
            let mut required = Vec::new();
            if let Some(table) = uses_index_on {
                required.push(format!("index on {table}"));
            }
            if *no_sort {
                required.push("no sort".to_string());
            }
            if let Some(max) = max_buffers {
                required.push(format!("<= {max} buffers"));
            }
            let required = required.join(", ");
            match obs.plans.get(name) {
                Some(Ok(facts)) => {
                    let index_ok = uses_index_on.as_ref().is_none_or(|t| {
                        facts.indexed.contains(t) && !facts.seq_scanned.contains(t)
                    });
                    let buffers_ok = match (max_buffers, facts.buffers) {
                        (Some(max), Some(got)) => got <= *max,
                        (Some(_), None) => false,
                        (None, _) => true,
                    };
                    let passed = index_ok && buffers_ok && !(*no_sort && facts.sorts);
                    let measured = match facts.buffers {
                        Some(b) if max_buffers.is_some() => {
                            format!("{} ({b} buffers)", facts.outline)
                        }
                        _ => facts.outline.clone(),
                    };
                    result(name.clone(), measured, required, passed, hint)
                }
                Some(Err(e)) => {
                    result(name.clone(), format!("no plan: {e}"), required, false, hint)
                }
                None => result(
                    name.clone(),
                    "not measured".to_string(),
                    required,
                    false,
                    hint,
                ),
            }
        }
        CheckLine::Connections {
            max_per_request,
            hint,
        } => {
            let label = "new DB connections per request".to_string();
            let required = format!("<= {max_per_request:.2}");
            match obs.sessions_opened {
                Some(opened) if obs.overall.sent > 0 => {
                    let per = opened as f64 / obs.overall.sent as f64;
                    result(
                        label,
                        format!("{per:.2} ({opened} for {} requests)", obs.overall.sent),
                        required,
                        per <= *max_per_request,
                        hint,
                    )
                }
                _ => result(label, "not measured".to_string(), required, false, hint),
            }
        }
        CheckLine::MetricsPresent { names, hint } => {
            let mut missing = BTreeSet::new();
            for scrape in &obs.metrics {
                match scrape {
                    Some(m) => missing.extend(names.iter().filter(|n| !m.has(n)).cloned()),
                    None => {
                        missing.insert("/metrics (no answer)".to_string());
                    }
                }
            }
            if obs.metrics.is_empty() {
                missing.insert("/metrics (no instance)".to_string());
            }
            let measured = if missing.is_empty() {
                format!("all {} present", names.len())
            } else {
                format!(
                    "missing {}",
                    missing.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            let passed = measured.starts_with("all");
            result(
                "pool metrics exported".to_string(),
                measured,
                format!("all {} present", names.len()),
                passed,
                hint,
            )
        }
        CheckLine::PoolBudget { reserved, hint } => {
            let budget = obs.max_connections.saturating_sub(*reserved);
            let required = format!(
                "<= {budget} (max_connections {} - {reserved} reserved)",
                obs.max_connections
            );
            let label = "pool budget".to_string();
            let maxes: Vec<Option<f64>> = obs
                .metrics
                .iter()
                .map(|m| m.as_ref().and_then(|m| m.sum("db_pool_max")))
                .collect();
            let answered = obs.metrics.iter().filter(|m| m.is_some()).count();
            if maxes.is_empty() || answered == 0 {
                return result(
                    label,
                    "no instance answered /metrics".to_string(),
                    required,
                    false,
                    hint,
                );
            }
            if maxes
                .iter()
                .zip(&obs.metrics)
                .any(|(max, m)| m.is_some() && max.is_none())
            {
                return result(
                    label,
                    "no pool (db_pool_max not exported)".to_string(),
                    required,
                    false,
                    hint,
                );
            }
            let total: f64 = maxes.iter().flatten().sum();
            let per: Vec<String> = maxes
                .iter()
                .map(|m| m.map_or("down".to_string(), |v| format!("{v:.0}")))
                .collect();
            let measured = if maxes.len() == 1 {
                format!("{total:.0}")
            } else {
                format!("{total:.0} = {} (per instance)", per.join(" + "))
            };
            // A down instance's pool cannot be read, so the sum cannot be vouched for.
            let all_answered = answered == maxes.len();
            result(
                label,
                measured,
                required,
                all_answered && total >= 1.0 && total <= f64::from(budget),
                hint,
            )
        }
        CheckLine::RefusedConnections { max, hint } => {
            let label = "connections refused by PostgreSQL (too many clients)".to_string();
            let required = format!("<= {max}");
            match obs.refused_connections {
                Some(n) => result(label, n.to_string(), required, n <= *max, hint),
                None => result(
                    label,
                    "not measured (server log unreadable)".to_string(),
                    required,
                    false,
                    hint,
                ),
            }
        }
        CheckLine::InstancesUp { hint } => {
            let total = obs.metrics.len();
            let up = obs.metrics.iter().filter(|m| m.is_some()).count();
            let mut measured = format!("{up}/{total}");
            if !obs.down.is_empty() {
                measured.push_str(&format!(" ({})", obs.down.join(", ")));
            }
            result(
                "instances up".to_string(),
                measured,
                format!("{total}/{total}"),
                total > 0 && up == total,
                hint,
            )
        }
        CheckLine::Balance {
            min_instances,
            tolerance,
            hint,
        } => balance(&obs.served, *min_instances, *tolerance, hint),
    }
}

/// The balance line: enough instances served requests, each close to an even share.
fn balance(served: &[Option<f64>], min_instances: u32, tolerance: f64, hint: &str) -> LineResult {
    let result =
        |label: String, measured: String, required: String, passed: bool, hint: &str| LineResult {
            label,
            measured,
            required,
            passed,
            hint: (!passed).then(|| hint.to_string()),
        };
    let label = "request share per instance".to_string();
    let required = format!(
        ">= {min_instances} instances, each an even share ± {:.0}%",
        tolerance * 100.0
    );
    let total: f64 = served.iter().flatten().sum();
    if served.is_empty() || total <= 0.0 {
        return result(
            label,
            "no requests counted".to_string(),
            required,
            false,
            hint,
        );
    }
    let even = total / served.len() as f64;
    let shares: Vec<String> = served
        .iter()
        .map(|s| s.map_or("down".to_string(), |v| format!("{:.0}%", 100.0 * v / total)))
        .collect();
    let balanced = served
        .iter()
        .all(|s| s.is_some_and(|v| (v - even).abs() <= tolerance * even));
    let enough = served.len() >= min_instances as usize;
    let measured = format!("{} instance(s): {}", served.len(), shares.join(" / "));
    result(label, measured, required, enough && balanced, hint)
}

/// EXPLAIN (FORMAT JSON) of `query` on `database_url`, reduced to the facts checks judge.
///
/// With `analyze`, the statement runs: EXPLAIN (ANALYZE, BUFFERS) in one transaction that is
/// then rolled back (so an INSERT leaves nothing behind): once to warm up (the pages a fresh
/// session reads to load the catalog are not the query's work), then [`MEASURED_RUNS`] times,
/// keeping the run with the median page count. A write now and then lands on a full page and
/// splits it (or extends the table past dead rows a busy run left): the median ignores that.
pub async fn explain(database_url: &str, query: &str, analyze: bool) -> Result<PlanFacts, String> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(connection);
    let db_message = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    let result = async {
        if !analyze {
            let messages = client
                .simple_query(&format!("EXPLAIN (FORMAT JSON) {query}"))
                .await
                .map_err(db_message)?;
            return facts_of(&messages);
        }
        client
            .simple_query("BEGIN; SET LOCAL statement_timeout = '10s'")
            .await
            .map_err(db_message)?;
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}");
        client.simple_query(&sql).await.map_err(db_message)?;
        let mut runs = Vec::with_capacity(MEASURED_RUNS);
        for _ in 0..MEASURED_RUNS {
            let messages = client.simple_query(&sql).await.map_err(db_message)?;
            runs.push(facts_of(&messages)?);
        }
        client.simple_query("ROLLBACK").await.map_err(db_message)?;
        runs.sort_by_key(|f| f.buffers);
        Ok(runs.swap_remove(MEASURED_RUNS / 2))
    }
    .await;
    drop(client);
    let _ = conn.await;
    result
}

/// How many EXPLAIN ANALYZE runs (after the warm-up) a page-counting plan line takes the median of.
const MEASURED_RUNS: usize = 5;

/// The facts of one `EXPLAIN (FORMAT JSON)` answer.
fn facts_of(messages: &[tokio_postgres::SimpleQueryMessage]) -> Result<PlanFacts, String> {
    let text = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or("EXPLAIN returned no rows")?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let root = json
        .get(0)
        .and_then(|p| p.get("Plan"))
        .ok_or("EXPLAIN output has no Plan")?;
    Ok(plan_facts(root))
}

/// Walks an EXPLAIN (FORMAT JSON) plan node tree.
pub fn plan_facts(root: &serde_json::Value) -> PlanFacts {
    let mut facts = PlanFacts::default();
    // A node's buffer counts include its children's, so the top node's are the plan's.
    let blocks = |key: &str| root.get(key).and_then(|v| v.as_u64());
    facts.buffers = match (blocks("Shared Hit Blocks"), blocks("Shared Read Blocks")) {
        (None, None) => None,
        (hit, read) => Some(hit.unwrap_or(0) + read.unwrap_or(0)),
    };
    let mut outline = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let kind = node
            .get("Node Type")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let relation = node.get("Relation Name").and_then(|v| v.as_str());
        let index = node.get("Index Name").and_then(|v| v.as_str());
        let backward = node.get("Scan Direction").and_then(|v| v.as_str()) == Some("Backward");
        let mut label = kind.to_string();
        if backward {
            label.push_str(" Backward");
        }
        if let Some(index) = index {
            label.push_str(&format!(" using {index}"));
        }
        if let Some(relation) = relation {
            label.push_str(&format!(" on {relation}"));
        }
        match kind {
            "Index Scan" | "Index Only Scan" => {
                if let Some(r) = relation {
                    facts.indexed.insert(r.to_string());
                }
            }
            "Bitmap Heap Scan" => {
                if let Some(r) = relation {
                    facts.indexed.insert(r.to_string());
                }
            }
            "Seq Scan" => {
                if let Some(r) = relation {
                    facts.seq_scanned.insert(r.to_string());
                }
            }
            "Sort" | "Incremental Sort" => facts.sorts = true,
            _ => {}
        }
        outline.push(label);
        if let Some(children) = node.get("Plans").and_then(|v| v.as_array()) {
            // Reverse so the first child is visited (and listed) first.
            stack.extend(children.iter().rev());
        }
    }
    facts.outline = outline.join(" > ");
    facts
}

/// Log lines that report errors (the kit logs causes at ERROR, sqlx slow queries at WARN),
/// errors first, each once, cut to a readable length.
fn error_lines(logs: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut picked: Vec<(u8, String)> = logs
        .lines()
        .filter_map(|l| {
            let rank = if l.contains("ERROR") || l.contains("too many clients") {
                0
            } else if l.contains("WARN") {
                1
            } else {
                return None;
            };
            // Deduplicate on the message without its timestamp and numbers.
            let key: String = l
                .split_whitespace()
                .skip(3)
                .take(8)
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            let short: String = l.chars().take(220).collect();
            seen.insert(key).then_some((rank, short))
        })
        .collect();
    picked.sort_by_key(|(rank, _)| *rank);
    picked.into_iter().map(|(_, l)| l).take(5).collect()
}

/// `850 µs`, `12.3 ms`, `2.00 s`.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 999_950 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// The check table as plain text: line, measured, required, result; then the hints of the
/// failing lines and the verdict.
pub fn render(report: &CheckReport) -> String {
    let headers = ["check", "measured", "required", "result"];
    let rows: Vec<[String; 4]> = report
        .lines
        .iter()
        .map(|l| {
            [
                l.label.clone(),
                l.measured.clone(),
                l.required.clone(),
                if l.passed { "PASS" } else { "FAIL" }.to_string(),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            if i < 3 {
                s.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(headers));
    out.push('\n');
    out.push_str(&line(
        widths.map(|w| "─".repeat(w)).each_ref().map(String::as_str),
    ));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
        out.push('\n');
    }
    let failed: Vec<&LineResult> = report.lines.iter().filter(|l| !l.passed).collect();
    if !failed.is_empty() {
        out.push_str("\nHints:\n");
        for l in &failed {
            if let Some(h) = &l.hint {
                out.push_str(&format!("  - {}: {h}\n", l.label));
            }
        }
    }
    if !report.log_errors.is_empty() && !report.passed {
        out.push_str("\nFrom the service's log:\n");
        for l in &report.log_errors {
            out.push_str(&format!("  {l}\n"));
        }
    }
    let passed = report.lines.len() - failed.len();
    out.push_str(&format!(
        "\n{}: {passed} of {} lines pass ({}, scenario {}).\n",
        if report.passed { "PASS" } else { "FAIL" },
        report.lines.len(),
        report.code,
        report.scenario
    ));
    out
}
