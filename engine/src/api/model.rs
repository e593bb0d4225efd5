//! The types the UI sees, and their conversions from engine types. These are the only types
//! of the lab that derive `Serialize` for the UI (serialization only at the boundary): engine
//! types stay free to change, and this file is the contract with `ui/`.
//!
//! Why one file of ~700 lines: it is the whole JSON contract, mirrored by `ui/src/api.ts`;
//! reading (and reviewing a change to) the contract in one place beats splitting it by
//! endpoint. Each type is small and has no logic beyond its conversion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::Scenario;
use crate::check::{CheckReport, LineResult};
use crate::home::ScenarioProgress;
use crate::load::{LatencySummary, RunSummary, SecondStats};
use crate::metrics::{RedisSample, ReplicaSample, Sample};
use crate::progress::Event;
use crate::sql::QueryResult;

/// Every error body.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    pub error: String,
}

/// One scenario in the sidebar.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioSummary {
    pub id: String,
    pub title: String,
    pub track: u8,
    pub stage: String,
    pub minutes: u32,
    pub concepts: Vec<String>,
    pub progress: ProgressView,
    /// "Open in Codespaces" for this scenario, when the lab's GitHub repository is configured
    /// (`catalog::codespaces`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codespaces: Option<String>,
}

/// What the learner has done on a scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProgressView {
    pub checks_run: u32,
    pub passed: bool,
    pub solution_revealed: bool,
    pub hints_shown: u32,
    /// Answers to the guide's questions, by question id.
    pub answers: BTreeMap<String, String>,
}

/// A scenario opened: the summary plus the guide.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioDetail {
    #[serde(flatten)]
    pub summary: ScenarioSummary,
    /// SCENARIO.md, as markdown.
    pub guide: String,
    /// How many hints there are (they are revealed one at a time).
    pub hints: usize,
    pub instances: u32,
    /// Background workers (`[topology.workers]`): the logs tab lists their logs too.
    pub workers: u32,
    pub postgres: bool,
    /// Whether the scenario runs a Redis (`[topology.redis]`): the UI then shows the Redis
    /// console and charts.
    pub redis: bool,
    /// Whether the scenario runs a streaming replica (`[topology.postgres] replicas`): the UI
    /// then shows the replication charts, the apply-delay control and the SQL console's
    /// replica choice.
    pub replica: bool,
    /// Load profile names (`explore`, `check`, ...).
    pub profiles: Vec<String>,
    /// The guide's questions (fenced `question` blocks), in order.
    pub questions: Vec<QuestionView>,
    /// The scenario's own charts (`[[panels]]`), drawn after the standard ones.
    pub panels: Vec<crate::catalog::Panel>,
    /// Every chart of the scenario in order (`dashboards::charts`, the definition the Grafana
    /// dashboards are generated from): the window takes titles, units and lines from it.
    pub charts: Vec<ChartView>,
}

/// A chart as the window draws it: its id, title, unit and the labels of its lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartView {
    pub id: String,
    pub title: String,
    pub unit: String,
    pub series: Vec<String>,
}

impl From<&crate::dashboards::Chart> for ChartView {
    fn from(c: &crate::dashboards::Chart) -> Self {
        ChartView {
            id: c.id.clone(),
            title: c.title.clone(),
            unit: c.unit.clone(),
            series: c.series.iter().map(|s| s.label.clone()).collect(),
        }
    }
}

/// A question of the guide: a fenced block whose info string is
/// `question id=<id> [figure=<load|check>.<p50|p95|p99|max|error_rate|achieved_rate>]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionView {
    pub id: String,
    /// The measured figure an observation question is bound to, e.g. `load.p95`.
    pub figure: Option<String>,
}

/// `PUT .../answers/{question}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub answer: String,
}

/// One finished load run or check, as the run history keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// `load` or `check`.
    pub kind: String,
    /// When it finished, in seconds since the Unix epoch.
    pub finished_at: u64,
    /// The check's verdict (checks only).
    pub passed: Option<bool>,
    pub summary: Option<SummaryView>,
    pub seconds: Vec<SecondView>,
}

impl ScenarioSummary {
    /// `repository`: the lab's GitHub repository (`OWNER/NAME`), if configured.
    pub fn new(
        s: &Scenario,
        progress: Option<&ScenarioProgress>,
        repository: Option<&str>,
    ) -> ScenarioSummary {
        ScenarioSummary {
            id: s.id.clone(),
            title: s.title.clone(),
            track: s.track,
            stage: s.stage.as_str().to_string(),
            minutes: s.minutes,
            concepts: s.concepts.clone(),
            progress: progress.map(ProgressView::from).unwrap_or_default(),
            codespaces: repository.map(|r| crate::catalog::codespaces::url(r, &s.id)),
        }
    }
}

impl From<&ScenarioProgress> for ProgressView {
    fn from(p: &ScenarioProgress) -> Self {
        ProgressView {
            checks_run: p.checks_run,
            passed: p.passed,
            solution_revealed: p.solution_revealed,
            hints_shown: p.hints_shown,
            answers: p.answers.clone(),
        }
    }
}

/// A file or folder of the learner's service. `path` is relative to the service folder,
/// with `/` separators: the form the file endpoints take.
#[derive(Debug, Clone, Serialize)]
pub struct FileNode {
    pub name: String,
    pub path: String,
    pub kind: FileKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<FileNode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
}

/// The tree of the learner's service folder.
#[derive(Debug, Clone, Serialize)]
pub struct FileTree {
    /// Where the files are on disk, for learners who prefer their own editor.
    pub root: String,
    pub entries: Vec<FileNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileContent {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileSaved {
    pub path: String,
    pub bytes: usize,
}

/// Where a scenario's lab is, as the status endpoint reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunStatus {
    Stopped,
    /// Coming up; `step` is the step under way ("build service").
    Starting {
        step: Option<String>,
    },
    /// Ready: `url` is instance 1, `urls` every instance, `entry` where requests go (nginx when
    /// the scenario has one, else instance 1), `cpu_limit` how each instance's CPU share is
    /// enforced when the scenario gives one (a cgroup, or the fallback and why).
    Running {
        url: String,
        urls: Vec<String>,
        entry: String,
        cpu_limit: Option<String>,
    },
    /// Could not come up, or a service died. `diagnostics` holds the compiler's output when
    /// the code does not compile.
    Failed {
        error: String,
        diagnostics: Option<String>,
    },
}

/// The status endpoint's body.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub scenario: String,
    #[serde(flatten)]
    pub status: RunStatus,
    /// Progress events of the last start, oldest first.
    pub events: Vec<EventView>,
    /// Set when another sdlab process (a terminal's `sdlab start`, a CLI check) owns this
    /// lab: its pid. The state then describes that lab as its run state file shows it; this
    /// server cannot load, check or stop it (`sdlab stop <id>` can).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_pid: Option<u32>,
}

/// One progress event of a start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    /// `started`, `finished`, `failed` or `info`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        let (kind, step, text, took_ms) = match e {
            Event::Started(step) => ("started", Some(*step), None, None),
            Event::Finished { step, took, note } => (
                "finished",
                Some(*step),
                Some(note.clone()),
                Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
            ),
            Event::Failed { step, error } => ("failed", Some(*step), Some(error.clone()), None),
            Event::Info(text) => ("info", None, Some(text.clone()), None),
        };
        EventView {
            kind,
            step: step.map(|s| s.label().to_string()),
            text,
            took_ms,
        }
    }
}

/// The SQL console's request. Writes need `"write": true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    pub query: String,
    #[serde(default)]
    pub write: bool,
    /// Run on the streaming replica (it refuses writes, even with `write`: its error is shown).
    #[serde(default)]
    pub replica: bool,
}

/// `POST .../replica`: the running replica's new apply delay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaRequest {
    pub apply_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlResponse {
    pub read_only: bool,
    pub results: Vec<SqlResultView>,
    /// Said when a statement changed the schema: the check will not see it unless it is in
    /// `migrations/` (`sql::schema_note`).
    pub note: Option<String>,
}

/// One statement's result: column names, rows of text (null as null), rows affected.
#[derive(Debug, Clone, Serialize)]
pub struct SqlResultView {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    pub affected: Option<u64>,
}

impl From<QueryResult> for SqlResultView {
    fn from(r: QueryResult) -> Self {
        SqlResultView {
            columns: r.columns,
            rows: r.rows,
            affected: r.affected,
        }
    }
}

/// The Redis console's request: one command line (`GET "a key"`). Writes and admin commands
/// need `"write": true` (`redis_console::refuse_in_read_only`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisRequest {
    pub command: String,
    #[serde(default)]
    pub write: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisResponse {
    pub read_only: bool,
    /// The reply as redis-cli prints it (`"v"`, `(integer) 3`, `(error) ...`, numbered arrays).
    pub reply: String,
}

/// What to reset; both by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[serde(default = "yes")]
    pub code: bool,
    #[serde(default = "yes")]
    pub database: bool,
}

impl Default for ResetRequest {
    fn default() -> Self {
        ResetRequest {
            code: true,
            database: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize)]
pub struct ResetView {
    /// Where the learner's code was copied before it was restored.
    pub backup: Option<String>,
    pub code_reset: bool,
    pub database_reset: bool,
}

/// The hints revealed so far, in order, and how many there are.
#[derive(Debug, Clone, Serialize)]
pub struct HintsView {
    pub total: usize,
    pub shown: Vec<String>,
}

/// A file as the editor opens it: its saved text, and the unsaved draft the UI kept, if any.
#[derive(Debug, Clone, Serialize)]
pub struct EditorFile {
    pub path: String,
    pub content: String,
    pub draft: Option<String>,
}

/// The revealed solution: SOLUTION.md and the solution's files (paths as in `service/`).
#[derive(Debug, Clone, Serialize)]
pub struct SolutionView {
    pub notes: String,
    pub files: Vec<FileContent>,
}

/// The tail of an instance's log.
#[derive(Debug, Clone, Serialize)]
pub struct LogsView {
    /// The instance whose log this is (1 when `worker` is set).
    pub instance: u32,
    /// The worker whose log this is, when one was asked for.
    pub worker: Option<u32>,
    /// The lines as written (only request `?request=`'s when given).
    pub lines: Vec<String>,
    /// The same lines parsed (`logview`): JSON lines with their time, level, message,
    /// request ID and fields.
    pub entries: Vec<crate::logview::LogEntry>,
}

/// One second of metrics as the charts read it.
#[derive(Debug, Clone, Serialize)]
pub struct SampleView {
    /// Seconds since the stream started.
    pub at: f64,
    pub services: Vec<ServiceSampleView>,
    pub postgres: Option<PgSampleView>,
    /// The scenario's Redis, when it has one and INFO answered.
    pub redis: Option<RedisSampleView>,
    /// The streaming replica, when the scenario has one and it answered.
    pub replica: Option<ReplicaSampleView>,
}

/// One second of the streaming replica (see `metrics::ReplicaSample`): the lag charts.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaSampleView {
    /// `streaming`, `catchup`, ... from the primary's pg_stat_replication, or `down`.
    pub state: String,
    /// How old the replica's data is (0 when it has replayed everything; null: unknown).
    pub replay_lag_seconds: Option<f64>,
    /// WAL written on the primary and not yet replayed on the replica.
    pub lag_bytes: Option<i64>,
    /// The replica's current `recovery_min_apply_delay`.
    pub apply_delay_ms: Option<i64>,
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
}

impl From<&ReplicaSample> for ReplicaSampleView {
    fn from(r: &ReplicaSample) -> Self {
        ReplicaSampleView {
            state: r.state.clone(),
            replay_lag_seconds: r.replay_lag_seconds,
            lag_bytes: r.lag_bytes,
            apply_delay_ms: r.apply_delay_ms,
            cpu: r.cpu,
            rss_bytes: r.rss_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceSampleView {
    pub instance: u32,
    /// Port on 127.0.0.1 the instance listens on.
    pub port: u16,
    /// Whether it answered `/metrics` in time; a killed or hung instance is down.
    pub up: bool,
    /// Why it is down ("connection refused", "no answer within 700 ms", ...).
    pub down_reason: Option<String>,
    /// Sums over labels of each metric the service exposes (name -> value).
    pub metrics: BTreeMap<String, f64>,
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgSampleView {
    pub by_state: BTreeMap<String, i64>,
    pub sessions_total: i64,
    pub opened_per_second: f64,
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
}

/// One second of Redis INFO; rates are null on the first sample (nothing to compare with).
#[derive(Debug, Clone, Serialize)]
pub struct RedisSampleView {
    pub hits_per_second: Option<f64>,
    pub misses_per_second: Option<f64>,
    /// Hits over lookups in that second (null without lookups).
    pub hit_ratio: Option<f64>,
    pub used_memory: u64,
    /// 0: no limit.
    pub maxmemory: u64,
    pub evicted_per_second: Option<f64>,
    /// Writes refused with OOM since Redis started (a counter: the UI charts its rate).
    pub rejected_writes: u64,
    pub ops_per_second: u64,
    pub clients: u64,
}

impl From<&RedisSample> for RedisSampleView {
    fn from(r: &RedisSample) -> Self {
        RedisSampleView {
            hits_per_second: r.hits_per_second,
            misses_per_second: r.misses_per_second,
            hit_ratio: r.hit_ratio,
            used_memory: r.used_memory,
            maxmemory: r.maxmemory,
            evicted_per_second: r.evicted_per_second,
            rejected_writes: r.rejected_writes,
            ops_per_second: r.ops_per_second,
            clients: r.clients,
        }
    }
}

impl From<&Sample> for SampleView {
    fn from(s: &Sample) -> Self {
        SampleView {
            at: s.at.as_secs_f64(),
            services: s
                .services
                .iter()
                .map(|svc| ServiceSampleView {
                    instance: svc.instance,
                    port: svc.port,
                    up: svc.up,
                    down_reason: svc.down_reason.clone(),
                    metrics: svc
                        .metrics
                        .as_ref()
                        .map(|m| {
                            let mut sums = BTreeMap::new();
                            for (name, _, value) in &m.samples {
                                *sums.entry(name.clone()).or_insert(0.0) += value;
                            }
                            sums
                        })
                        .unwrap_or_default(),
                    cpu: svc.cpu,
                    rss_bytes: svc.rss_bytes,
                })
                .collect(),
            postgres: s.postgres.as_ref().map(|p| PgSampleView {
                by_state: p.by_state.clone(),
                sessions_total: p.sessions_total,
                opened_per_second: p.opened_per_second,
                cpu: p.cpu,
                rss_bytes: p.rss_bytes,
            }),
            redis: s.redis.as_ref().map(RedisSampleView::from),
            replica: s.replica.as_ref().map(ReplicaSampleView::from),
        }
    }
}

/// `POST .../load`: which profile (default `explore`), optionally one constant stage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadRequest {
    pub profile: Option<String>,
    /// Requests per second.
    pub rate: Option<f64>,
    /// Seconds.
    pub duration: Option<f64>,
}

/// A load run or a check, while it runs and after.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// `load` or `check`.
    pub kind: &'static str,
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    /// One entry per completed second of load.
    pub seconds: Vec<SecondView>,
    pub summary: Option<SummaryView>,
    /// The check's table, when `kind` is `check` and it is done.
    pub check: Option<CheckView>,
    pub error: Option<String>,
    /// What a check is doing before its load starts: it brings up its own lab (the learner's
    /// code on a fresh copy of the seeded database), e.g. "build service + apply migrations".
    pub step: Option<String>,
}

/// One second of load, latencies in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondView {
    pub second: u32,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Failures by label (`"timeout"`, `"http 503"`, ...).
    pub errors: BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub in_flight: u64,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl From<&SecondStats> for SecondView {
    fn from(t: &SecondStats) -> Self {
        let mut errors: BTreeMap<String, u64> = t
            .http_errors
            .iter()
            .map(|(code, n)| (crate::load::status_label(*code), *n))
            .collect();
        for (kind, n) in &t.errors {
            *errors.entry(kind.label().to_string()).or_insert(0) += n;
        }
        SecondView {
            second: t.second,
            sent: t.sent,
            ok: t.ok,
            failed: errors.values().sum(),
            errors,
            p50_ms: ms(t.p50),
            p95_ms: ms(t.p95),
            p99_ms: ms(t.p99),
            max_ms: ms(t.max),
            in_flight: t.in_flight,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyView {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl From<&LatencySummary> for LatencyView {
    fn from(l: &LatencySummary) -> Self {
        LatencyView {
            p50_ms: ms(l.p50),
            p90_ms: ms(l.p90),
            p95_ms: ms(l.p95),
            p99_ms: ms(l.p99),
            p999_ms: ms(l.p999),
            max_ms: ms(l.max),
            mean_ms: ms(l.mean),
        }
    }
}

/// A whole load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SummaryView {
    pub duration_s: f64,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub achieved_rate: f64,
    pub offered_rate: f64,
    pub latency: LatencyView,
    pub per_request: Vec<RequestSummaryView>,
    pub errors: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestSummaryView {
    pub name: String,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub latency: LatencyView,
}

impl From<&RunSummary> for SummaryView {
    fn from(s: &RunSummary) -> Self {
        SummaryView {
            duration_s: s.duration.as_secs_f64(),
            sent: s.sent,
            ok: s.ok,
            failed: s.failed,
            error_rate: s.error_rate,
            achieved_rate: s.achieved_rate,
            offered_rate: s.offered_rate,
            latency: LatencyView::from(&s.latency),
            per_request: s
                .per_template
                .iter()
                .map(|(name, t)| RequestSummaryView {
                    name: name.clone(),
                    sent: t.sent,
                    ok: t.ok,
                    failed: t.failed,
                    latency: LatencyView::from(&t.latency),
                })
                .collect(),
            errors: s.errors.clone(),
        }
    }
}

/// A check's table: each line measured vs required, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub passed: bool,
    pub lines: Vec<CheckLineView>,
    /// Lines of the service's log that name errors.
    pub log_errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckLineView {
    pub label: String,
    pub measured: String,
    pub required: String,
    pub passed: bool,
    pub hint: Option<String>,
}

impl From<&LineResult> for CheckLineView {
    fn from(l: &LineResult) -> Self {
        CheckLineView {
            label: l.label.clone(),
            measured: l.measured.clone(),
            required: l.required.clone(),
            passed: l.passed,
            hint: l.hint.clone(),
        }
    }
}

impl From<&CheckReport> for CheckView {
    fn from(r: &CheckReport) -> Self {
        CheckView {
            passed: r.passed,
            lines: r.lines.iter().map(CheckLineView::from).collect(),
            log_errors: r.log_errors.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Sample, ServiceSample};

    #[test]
    fn a_down_instance_reaches_the_ui_as_down_with_its_reason() {
        let sample = Sample {
            at: std::time::Duration::from_secs(3),
            services: vec![
                ServiceSample {
                    instance: 1,
                    port: 4001,
                    up: true,
                    ..Default::default()
                },
                ServiceSample {
                    instance: 2,
                    port: 4002,
                    up: false,
                    down_reason: Some("connection refused".to_string()),
                    ..Default::default()
                },
            ],
            postgres: None,
            redis: None,
            replica: None,
        };
        let json = serde_json::to_value(SampleView::from(&sample)).expect("serialises");
        let services = json["services"].as_array().expect("services");
        assert_eq!(services[0]["up"], true);
        assert_eq!(services[1]["up"], false);
        assert_eq!(services[1]["port"], 4002);
        assert_eq!(services[1]["down_reason"], "connection refused");
    }

    #[test]
    fn the_replica_sample_reaches_the_ui_with_its_lag_and_delay() {
        let sample = Sample {
            replica: Some(ReplicaSample {
                state: "streaming".to_string(),
                replay_lag_seconds: Some(0.5),
                lag_bytes: Some(4096),
                apply_delay_ms: Some(500),
                cpu: Some(0.25),
                rss_bytes: None,
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(SampleView::from(&sample)).expect("serialises");
        let replica = &json["replica"];
        assert_eq!(replica["state"], "streaming");
        assert_eq!(replica["replay_lag_seconds"], 0.5);
        assert_eq!(replica["lag_bytes"], 4096);
        assert_eq!(replica["apply_delay_ms"], 500);
        assert_eq!(replica["cpu"], 0.25);
        assert!(replica["rss_bytes"].is_null());
        let json = serde_json::to_value(SampleView::from(&Sample::default())).expect("serialises");
        assert!(json["replica"].is_null(), "no replica: null");
    }

    #[test]
    fn the_redis_sample_reaches_the_ui_with_null_rates_before_the_second_sample() {
        let mut sample = Sample {
            redis: Some(RedisSample {
                hits_per_second: Some(90.0),
                misses_per_second: None,
                hit_ratio: Some(0.9),
                used_memory: 1_500_000,
                maxmemory: 2_097_152,
                evicted_per_second: Some(4.0),
                rejected_writes: 2,
                ops_per_second: 150,
                clients: 3,
                ..RedisSample::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(SampleView::from(&sample)).expect("serialises");
        let redis = &json["redis"];
        assert_eq!(redis["hits_per_second"], 90.0);
        assert!(redis["misses_per_second"].is_null());
        assert_eq!(redis["hit_ratio"], 0.9);
        assert_eq!(redis["maxmemory"], 2_097_152);
        assert_eq!(redis["evicted_per_second"], 4.0);
        assert_eq!(redis["rejected_writes"], 2);
        assert_eq!(redis["ops_per_second"], 150);
        assert_eq!(redis["clients"], 3);
        sample.redis = None;
        let json = serde_json::to_value(SampleView::from(&sample)).expect("serialises");
        assert!(
            json["redis"].is_null(),
            "no Redis: null, and the UI draws no Redis charts"
        );
    }
}
