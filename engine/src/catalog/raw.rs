//! The raw shape of `scenario.toml`: serde structs that mirror the file exactly.
//!
//! Nothing outside `catalog` sees these; `validate` turns them into a `Scenario`.
//! `deny_unknown_fields` everywhere, so a typo is an error that names the field
//! instead of a setting that silently does nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub id: String,
    pub title: String,
    pub track: u8,
    pub stage: String,
    #[serde(default)]
    pub concepts: Vec<String>,
    pub minutes: u32,
    pub topology: RawTopology,
    pub db: Option<RawDb>,
    /// Users logged in before every load, for requests with `auth`.
    pub sessions: Option<RawSessions>,
    #[serde(default)]
    pub requests: Vec<RawRequest>,
    #[serde(default)]
    pub profiles: BTreeMap<String, RawProfile>,
    pub check: RawCheck,
    #[serde(default)]
    pub hints: Vec<String>,
    /// Extra charts for this scenario (`[[panels]]`), after the lab's standard ones.
    #[serde(default)]
    pub panels: Vec<RawPanel>,
}

/// `[[panels]]`: a chart of the services' own metrics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPanel {
    pub title: String,
    /// The y axis' unit, e.g. "jobs" or "ms".
    pub unit: String,
    pub series: Vec<RawSeries>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSeries {
    pub label: String,
    /// A metric the services export on /metrics (summed over its labels).
    pub metric: String,
    /// Plot the per-second increase of a counter instead of its value.
    #[serde(default)]
    pub rate: bool,
    /// Only this instance (1-based); summed over every instance when absent.
    pub instance: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTopology {
    #[serde(default = "one")]
    pub instances: u32,
    pub postgres: Option<RawPostgres>,
    /// A slow outside service the lab runs next to the instances (`[topology.dependency]`).
    pub dependency: Option<RawDependency>,
    /// Each instance's CPU share in cores (a cgroup quota, like a container's `--cpus`).
    pub cpus_per_instance: Option<f64>,
    /// nginx in front of the instances, configured by the learner (`[topology.nginx]`).
    pub nginx: Option<RawNginx>,
    /// A Redis for the instances (`[topology.redis]`).
    pub redis: Option<RawRedis>,
    /// Background worker processes (`[topology.workers]`).
    pub workers: Option<RawWorkers>,
}

/// `[topology.workers]`: the service's binary run again as workers (`SDLAB_ROLE=worker`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkers {
    /// How many worker processes, 1 to 8.
    pub count: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedis {
    /// Redis's `maxmemory`, e.g. "2mb" (none: no limit).
    pub maxmemory: Option<String>,
    /// Redis's `maxmemory-policy`, e.g. "noeviction" or "allkeys-lru".
    pub policy: Option<String>,
    /// Snapshots and the append-only file (off: a cache starts empty).
    #[serde(default)]
    pub persistence: bool,
    /// The learner's Redis settings file, relative to the service folder (e.g.
    /// "deploy/redis.conf"): what a team sets in its managed Redis's parameter group.
    pub config: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNginx {
    /// The learner's nginx config (`http` context), relative to the service folder.
    pub config: String,
    /// The learner's file holding `instances = N`, relative to the service folder.
    pub instances_file: String,
    /// The most instances the learner may ask for.
    pub max_instances: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDependency {
    /// What it stands for, e.g. "payments" (shown in progress lines and logs).
    pub name: String,
    /// The environment variable each instance finds its URL in, e.g. "PAYMENTS_URL".
    pub env: String,
    /// How long it takes to answer each request, e.g. "250ms".
    pub latency: String,
    /// A field of the JSON body each call carries, e.g. "job_id": the stub counts calls per
    /// value, for `[check.dependency_calls]`.
    pub key: Option<String>,
    /// A request header (e.g. "Idempotency-Key"): a call repeating a value already seen is
    /// answered but not counted again per key, as a provider that dedups retries would.
    pub idempotency_header: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPostgres {
    pub database: String,
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
    /// Streaming standbys of the primary (0 or 1).
    #[serde(default)]
    pub replicas: u32,
    /// The standby's `recovery_min_apply_delay`, e.g. "500ms".
    pub replica_apply_delay: Option<String>,
    /// A CPU share in cores for the primary and, separately, for each replica.
    pub cpus: Option<f64>,
    /// The replica's own CPU share in cores, when it differs from `cpus`.
    pub replica_cpus: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDb {
    pub schema: String,
    pub seed: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequest {
    pub name: String,
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, RawParam>,
    /// Sent as a logged-in user (`[sessions]`): the lab draws `{user}` and sends its token.
    #[serde(default)]
    pub auth: bool,
    /// Extra headers, e.g. `{ "Idempotency-Key" = "order-{order}" }` (values may hold
    /// `{param}` placeholders).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A retrying client: resends of an attempt that timed out, as it was (0 to 3).
    #[serde(default)]
    pub retries: u32,
    /// How the lab tells a right answer (required: see `Oracle`).
    pub oracle: Option<RawOracle>,
}

/// `[sessions]`: users the lab logs in before every load.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSessions {
    /// The request kind that logs a user in; its `{user}` counts 1, 2, ...
    pub login: String,
    pub users: u32,
    /// The login answer's JSON field holding the session token.
    pub token: String,
}

/// `[requests.oracle]`: the truth an answer of this kind is judged against.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOracle {
    /// SQL on the check's database: `$1` the answer, `$2` the parameters, `$3` the status,
    /// `$4` the dependency's calls during the request; first column: right or not.
    pub sql: Option<String>,
    /// The statuses a right answer may have (without `sql`: all the oracle judges, for a
    /// scenario without a database).
    #[serde(default)]
    pub status: Vec<u16>,
    /// A JSON file (in the scenario's folder) of fields recorded from the reference solution,
    /// by request path: each must be in the answer with the same value.
    pub answers: Option<String>,
    pub hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(crate) enum RawParam {
    /// `{ uniform = [min, max] }`, both inclusive.
    Uniform([i64; 2]),
    /// `{ zipf = { n = 10000, s = 1.1 } }`: rank 1 is the hottest.
    Zipf { n: u64, s: f64 },
    /// `{ choice = ["a", "b"] }`.
    Choice(Vec<String>),
    /// `{ sequence = 1 }`: start, start+1, ...
    Sequence(i64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    #[serde(default)]
    pub description: String,
    pub timeout: String,
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    pub stages: Vec<RawStage>,
    pub mix: BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub duration: String,
    pub rate: f64,
    pub rate_from: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub profile: String,
    /// The shortest steady stage that still tells the broken service from a fix (e.g.
    /// "20s" where a queue needs that long to grow); a shortened test run keeps at least it.
    pub min_hold: Option<String>,
    /// Kill the busiest instance this long into the check load (e.g. "6s").
    pub kill_instance_at: Option<String>,
    /// This long into the check load, SIGKILL worker 1 and SIGTERM instance 1, and start
    /// them again (e.g. "11s").
    pub restart_at: Option<String>,
    /// With `restart_at`: how long the killed worker stays down before the lab starts it
    /// again (e.g. "1s"; default at once).
    pub worker_down: Option<String>,
    /// After the load, wait until the work is done (`[check.drain]`).
    pub drain: Option<RawDrain>,
    /// The queue's depth, sampled every second of the load (`[check.queue_depth]`).
    pub queue_depth: Option<RawQueueDepth>,
    /// The stub dependency fails for a while during the load (`[check.dependency_fault]`).
    pub dependency_fault: Option<RawDependencyFault>,
    #[serde(default)]
    pub slo: Vec<RawSlo>,
    #[serde(default)]
    pub plan: Vec<RawPlanAssert>,
    #[serde(default)]
    pub connections: Option<RawConnectionsAssert>,
    #[serde(default)]
    pub metrics: Option<RawMetricsAssert>,
    #[serde(default)]
    pub pool_budget: Option<RawPoolBudget>,
    #[serde(default)]
    pub refused_connections: Option<RawRefusedConnections>,
    #[serde(default)]
    pub balance: Option<RawBalance>,
    #[serde(default)]
    pub acquire_timeout: Option<RawAcquireTimeout>,
    #[serde(default)]
    pub served: Option<RawServed>,
    #[serde(default)]
    pub dependency_calls: Option<RawDependencyCalls>,
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
    #[serde(default)]
    pub cache_hits: Option<RawCacheHits>,
    #[serde(default)]
    pub rejected_writes: Option<RawRejectedWrites>,
    #[serde(default)]
    pub cache_ttl: Option<RawCacheTtl>,
    #[serde(default)]
    pub fresh_reads: Option<RawFreshReads>,
    #[serde(default)]
    pub replica_reads: Option<RawReplicaReads>,
    #[serde(default)]
    pub primary_reads: Option<RawPrimaryReads>,
    #[serde(default)]
    pub responses: Vec<RawResponses>,
    #[serde(default)]
    pub edge_cache: Option<RawEdgeCache>,
    #[serde(default)]
    pub request_ids: Option<RawRequestIds>,
    #[serde(default)]
    pub route_metrics: Option<RawRouteMetrics>,
}

/// Every request of the check load carries a unique ID in `header`; every answer must carry
/// it back, the logs must hold JSON lines with it, and (with `propagated`) the stub
/// dependency's calls must carry it too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequestIds {
    #[serde(default = "request_id_header")]
    pub header: String,
    #[serde(default)]
    pub propagated: bool,
    pub hint: String,
    /// The logs line's own hint (default: `hint`).
    pub logs_hint: Option<String>,
    /// The dependency line's own hint (default: `hint`).
    pub propagated_hint: Option<String>,
    /// Only the dependency's calls whose path starts with this are judged (e.g. "/authorize":
    /// a background task's calls serve no request); default: every call.
    pub propagated_path: Option<String>,
}

fn request_id_header() -> String {
    "X-Request-Id".to_string()
}

/// Every instance exports `histogram` with a `label` per route the check's mix hits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteMetrics {
    #[serde(default = "route_histogram")]
    pub histogram: String,
    #[serde(default = "route_label")]
    pub label: String,
    #[serde(default = "route_min_ratio")]
    pub min_ratio: f64,
    pub hint: String,
}

fn route_histogram() -> String {
    "http_request_duration_seconds".to_string()
}

fn route_label() -> String {
    "route".to_string()
}

fn route_min_ratio() -> f64 {
    0.95
}

/// At most `max` answers with this status during the load (e.g. 401: users logged out).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponses {
    pub status: u16,
    #[serde(default)]
    pub max: u64,
    pub hint: String,
}

/// At least `min_ratio` of the `request` kind's answers came from in front of the instances
/// (their `http_requests_total{route}` did not count them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEdgeCache {
    pub request: String,
    /// The service's route pattern for it, as its /metrics labels it (e.g. "/static/{file}").
    pub route: String,
    pub min_ratio: f64,
    pub hint: String,
}

/// Redis's hit ratio over the check load (keyspace hits / lookups) at least `min_ratio`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCacheHits {
    pub min_ratio: f64,
    pub hint: String,
}

/// Writes Redis refused for its maxmemory (OOM) during the check, at most `max` (usually 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRejectedWrites {
    #[serde(default)]
    pub max: u64,
    pub hint: String,
}

/// Every key in Redis after the check expires, within `max` (a duration).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCacheTtl {
    pub max: String,
    pub hint: String,
}

/// Read after write: the `write` request, then the `read` request with the same parameters
/// on another instance, `pairs` times after the load; each read judged by its oracle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFreshReads {
    pub write: String,
    pub read: String,
    #[serde(default = "twenty")]
    pub pairs: u32,
    pub hint: String,
}

fn twenty() -> u32 {
    20
}

/// The streaming replica read at least `min_share` of the pages both servers read during the
/// check load (each server's own `pg_stat_database`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplicaReads {
    pub min_share: f64,
    pub hint: String,
}

/// The primary read at most `max_per_request` pages per request of the check load.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrimaryReads {
    pub max_per_request: f64,
    pub hint: String,
}

/// The instances together served (their `http_requests_total`) at least this share of the
/// answers the load got: nothing in front of them (a cache, a canned reply) answered instead.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServed {
    pub min_ratio: f64,
    pub hint: String,
}

/// The stub dependency was called at most `max_per_key` times for any one key (its
/// `[topology.dependency] key`) during the check: e.g. no job charged twice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDependencyCalls {
    pub max_per_key: u64,
    pub hint: String,
}

/// `[check.rate_limit]`: the request kind `request` (a client over its limit) gets at most
/// `max_rate` successful answers per second, the rest 429.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub request: String,
    pub max_rate: f64,
    pub hint: String,
}

/// `[check.dependency_fault]`: `at` into the check load, for `lasting`, the stub dependency
/// answers `answer = "late"` (does the work, answers only after `late_by`) or `"down"` (503 at
/// once, does nothing).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDependencyFault {
    pub at: String,
    pub lasting: String,
    pub answer: String,
    pub late_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBalance {
    /// At least this many instances must serve the check load.
    pub min_instances: u32,
    /// Each instance's share of the requests within this fraction of an even share (0.2: ±20%).
    pub tolerance: f64,
    pub hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRefusedConnections {
    /// At most this many connections PostgreSQL refused ("too many clients") during the
    /// check load, counted in the server's log. Usually 0.
    #[serde(default)]
    pub max: u64,
    pub hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlo {
    pub metric: String,
    /// Restrict the line to one request of the mix (by name); whole run when absent.
    pub request: Option<String>,
    /// For latency metrics: a duration such as "250ms". For error_rate: a fraction.
    pub max: Option<toml::Value>,
    /// For achieved_rate: the fraction of the offered rate that must succeed.
    pub min_ratio: Option<f64>,
    pub hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlanAssert {
    pub name: String,
    /// The statement to EXPLAIN. With `max_buffers` it is executed (EXPLAIN ANALYZE) inside
    /// a transaction that is rolled back, so an INSERT may be judged too.
    pub query: String,
    /// The table the plan must read through an index (and never with a Seq Scan).
    pub uses_index_on: Option<String>,
    /// The plan must have no Sort or Incremental Sort node.
    #[serde(default)]
    pub no_sort: bool,
    /// At most this many shared buffers (pages, "Buffers: shared hit + read" of the plan's
    /// top node) for one execution, measured with EXPLAIN (ANALYZE, BUFFERS) on the second of
    /// two runs in one session, so first-use catalog reads do not count. Page counts do not
    /// depend on timing or load, which makes this the line for work that latency hides:
    /// an index with the wrong column order, or a write that maintains too many indexes.
    pub max_buffers: Option<u64>,
    pub hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnectionsAssert {
    pub max_per_request: f64,
    pub hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetricsAssert {
    pub present: Vec<String>,
    pub hint: String,
}

/// Every instance's pool must give up waiting for a connection before the client does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAcquireTimeout {
    pub hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPoolBudget {
    /// Connections kept free for admins and the lab's own monitoring.
    pub reserved: u32,
    pub hint: String,
}

/// `[check.drain]`: after the load, `sql` (one integer: the work not done yet) is polled on the
/// check's database until it says 0, for at most `within`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrain {
    pub sql: String,
    pub within: String,
    pub hint: String,
}

/// `[check.queue_depth]`: the Redis key holding the queue, and the most entries it may hold
/// at any second of the load.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueueDepth {
    pub key: String,
    pub max: u64,
    pub hint: String,
}
