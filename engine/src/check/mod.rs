//! Checks a fix: runs the scenario's check load against the running service, gathers what the
//! check lines need (latency, errors, new PostgreSQL sessions, the service's metrics, query
//! plans) into `Observations`, and judges each line into a table of measured vs required.
//!
//! One job per file: `run` (the check load and the observations), `evaluate` (pure: the same
//! observations always give the same table, which is what the unit tests pin down; it hands
//! each family of lines to its file: `pool`, `instances`, `cache`, `replica`, `queue`, ...),
//! `explain` (query plans reduced to `PlanFacts`), `render` (the terminal table). A new kind
//! of evidence is a new `Observations` field filled by `run` and a new `CheckLine` kind
//! judged by `evaluate`. Lines judge behaviour and plans, never names: any index that serves
//! the query passes, whatever it is called.

mod answers;
mod cache;
mod evaluate;
mod explain;
mod fresh;
mod instances;
mod kill;
mod pool;
mod probe;
mod queue;
mod render;
mod replica;
mod request_ids;
mod routes;
mod run;
mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::catalog::Percentile;
use crate::load::RunSummary;
use crate::metrics::PromText;

pub use cache::{KeyExpiries, RedisCounters};
pub use evaluate::evaluate;
pub use explain::{explain, plan_facts};
pub use fresh::FreshReads;
pub use queue::{Crash, Depth, Drained, QueueObs};
pub use render::render;
pub use replica::ReplicaReads;
pub use request_ids::IdObservations;
pub use routes::RouteCounts;
pub use run::{run, Load};

/// One judged line of the check table.
#[derive(Debug, Clone, PartialEq)]
pub struct LineResult {
    pub label: String,
    pub measured: String,
    pub required: String,
    pub passed: bool,
    /// The scenario's hint, only when the line failed.
    pub hint: Option<String>,
    /// Not judged: the line needs the check load and the check ran without it (`--no-load`).
    pub skipped: bool,
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
    /// How many answers the oracles judged after the load, and how long that took.
    pub answers_judged: Option<(u32, std::time::Duration)>,
}

/// Latency and errors of one slice of the run (the whole run, or one request of the mix).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestObs {
    pub sent: u64,
    pub failed: u64,
    /// Answers 429 Too Many Requests, among `failed`.
    pub too_many: u64,
    /// Successful answers per second of the load.
    pub ok_rate: f64,
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
#[derive(Debug, Clone)]
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
    /// New PostgreSQL sessions per request kind of the check's mix, each kind sent alone in a
    /// short probe after the load (see `probe.rs`), so one endpoint's pool cannot hide
    /// another's connection per request. None for a kind that could not be measured; empty
    /// when the scenario has no connections line (the probe only runs for it).
    pub sessions_per_kind: BTreeMap<String, Option<KindSessions>>,
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
    /// The answers verified after the load, by request kind (see `answers.rs`); Err: why they
    /// could not be verified at all.
    pub answers: Result<BTreeMap<String, KindAnswers>, String>,
    /// What the stub dependency counted per key during the check, when it has a key.
    pub dependency_calls: Option<DependencyCalls>,
    /// False when the check ran without its load (`--no-load`): the lines that need it are
    /// skipped, not judged.
    pub load_ran: bool,
    /// Redis's counters over the load (see `cache.rs`); None without Redis.
    pub redis: Option<Result<RedisCounters, String>>,
    /// Every Redis key's expiry after the check; None without Redis or a TTL line.
    pub key_expiries: Option<Result<KeyExpiries, String>>,
    /// The read-after-write probe (see `fresh.rs`); None without a fresh-reads line.
    pub fresh_reads: Option<Result<FreshReads, String>>,
    /// The primary's and the replica's reads over the load (see `replica.rs`); None without
    /// a replica line.
    pub replica_reads: Option<Result<ReplicaReads, String>>,
    /// The instance the check killed during the load (`[check] kill_instance_at`).
    pub killed: Option<Killed>,
    /// Why the check killed nothing although the scenario asks it to (the load ended or was
    /// cancelled first): the instances-up line fails with it.
    pub kill_missed: Option<String>,
    /// Requests the instances served during the load, by route pattern, for the routes the
    /// edge-cache lines name (None when an instance could not be counted).
    pub route_served: BTreeMap<String, Option<f64>>,
    /// What the load's request IDs showed (answers, logs, dependency calls); None without a
    /// `[check.request_ids]` or a load.
    pub request_ids: Option<IdObservations>,
    /// The route histogram's rise per label value; None without `[check.route_metrics]`.
    pub route_counts: Option<RouteCounts>,
    /// The crash, the queue's depth and the drain (`queue.rs`); empty without them.
    pub queue: QueueObs,
}

/// The instance a check killed, and when (into the load).
#[derive(Debug, Clone, PartialEq)]
pub struct Killed {
    /// 1-based, as in `INSTANCE_ID`.
    pub instance: u32,
    pub at: Duration,
}

/// The answers of one request kind that its oracle judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindAnswers {
    pub checked: u32,
    pub wrong: u32,
    /// The first wrong answer, to show.
    pub example: Option<WrongAnswer>,
}

/// A wrong answer, shortened for the table's hint.
#[derive(Debug, Clone, PartialEq)]
pub struct WrongAnswer {
    /// e.g. `GET /reports/7` or `POST /jobs {"account_id": 3, ...}`.
    pub request: String,
    /// The status and the body the service answered.
    pub answer: String,
    /// The right answer, when the oracle can say it.
    pub expected: Option<String>,
    /// The oracle's hint.
    pub hint: String,
}

/// Calls the stub dependency received during the check, counted by its key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DependencyCalls {
    pub name: String,
    pub key: String,
    pub calls: u64,
    pub keys: u64,
    /// The key called most often and how often.
    pub most: Option<(String, u64)>,
    /// `[check.dependency_fault]` and how many calls got its answer.
    pub fault: Option<(crate::catalog::DependencyFault, u64)>,
}

impl Default for Observations {
    fn default() -> Self {
        Observations {
            overall: RequestObs::default(),
            per_request: BTreeMap::new(),
            errors: BTreeMap::new(),
            offered_rate: 0.0,
            achieved_rate: 0.0,
            sessions_opened: None,
            sessions_per_kind: BTreeMap::new(),
            metrics: Vec::new(),
            down: Vec::new(),
            served: Vec::new(),
            refused_connections: None,
            max_connections: 0,
            plans: BTreeMap::new(),
            answers: Ok(BTreeMap::new()),
            dependency_calls: None,
            load_ran: true,
            redis: None,
            key_expiries: None,
            fresh_reads: None,
            replica_reads: None,
            killed: None,
            kill_missed: None,
            route_served: BTreeMap::new(),
            request_ids: None,
            route_counts: None,
            queue: QueueObs::default(),
        }
    }
}

/// What one request kind's probe measured: new sessions while only that kind was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSessions {
    pub sessions: u64,
    /// Requests that reached the service (arrivals over the probe's in-flight cap excluded).
    pub requests: u64,
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

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot run the check: {0}")]
    Setup(String),
    #[error("the check load failed: {0}")]
    Load(String),
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
