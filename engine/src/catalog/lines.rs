//! The lines a check judges (`CheckLine`), as validated from `[check]` and the automatic ones
//! (instances up, right answers), with the one rule for which of them need the check load.

use std::time::Duration;

/// One line of the check table.
#[derive(Debug, Clone)]
pub enum CheckLine {
    Slo {
        metric: SloMetric,
        /// Only this request of the mix; the whole run when `None`.
        request: Option<String>,
        hint: String,
    },
    /// An SQL query's plan must read `uses_index_on` through an index, not sort (if asked),
    /// and touch at most `max_buffers` pages per execution (if given; measured with EXPLAIN
    /// ANALYZE in a rolled-back transaction).
    Plan {
        name: String,
        query: String,
        uses_index_on: Option<String>,
        no_sort: bool,
        max_buffers: Option<u64>,
        hint: String,
    },
    /// New PostgreSQL sessions per request, measured from `pg_stat_database` for each request
    /// kind of the mix sent alone after the load: every kind must stay under the line.
    Connections { max_per_request: f64, hint: String },
    /// The service's `/metrics` must export these names.
    MetricsPresent { names: Vec<String>, hint: String },
    /// The sum of the instances' `db_pool_max` must fit `max_connections - reserved`.
    PoolBudget { reserved: u32, hint: String },
    /// Every instance's pool gives up waiting for a connection (`db_pool_acquire_timeout_seconds`
    /// in /metrics) before the client does (`client_timeout`, the check profile's timeout), so
    /// a request that cannot get a connection is answered 503 instead of hanging.
    AcquireTimeout {
        client_timeout: Duration,
        hint: String,
    },
    /// Connections PostgreSQL refused with "too many clients" during the check load (counted
    /// in the server's log) must be at most `max`.
    RefusedConnections { max: u64, hint: String },
    /// Every instance must still answer `/metrics` when the check load ends. Added to every
    /// scenario with more than one instance, so a killed instance fails the check by name.
    InstancesUp { hint: String },
    /// At least `min_instances` served the check load, each within `tolerance` of an even
    /// share of the requests (counted from each instance's `http_requests_total`).
    Balance {
        min_instances: u32,
        tolerance: f64,
        hint: String,
    },
    /// Every answer the lab verified after the load was right by its kind's oracle. Added to
    /// every scenario; its hint is the failing kind's oracle hint.
    Answers,
    /// The instances together served at least `min_ratio` of the answers the load got.
    Served { min_ratio: f64, hint: String },
    /// The stub dependency got at most `max_per_key` calls for any one key during the check.
    DependencyCalls { max_per_key: u64, hint: String },
    /// Redis answered at least `min_ratio` of the check load's lookups from its keys
    /// (`keyspace_hits / (hits + misses)` of INFO, before and after the load).
    CacheHits { min_ratio: f64, hint: String },
    /// Redis refused at most `max` writes for its maxmemory (`errorstat_OOM`) during the check.
    RejectedWrites { max: u64, hint: String },
    /// Every key Redis holds after the check expires within `max` (no key without a TTL).
    CacheTtl { max: Duration, hint: String },
    /// After the load, `pairs` times: the `write` request on one instance, then the `read`
    /// request with the same parameters on another; every read must be right by its oracle
    /// (no stale read after an update).
    FreshReads {
        write: crate::load::RequestTemplate,
        read: crate::load::RequestTemplate,
        pairs: u32,
        hint: String,
    },
    /// The streaming replica read at least `min_share` of the 8 kB pages the primary and the
    /// replica read during the check load (each server's `pg_stat_database` for the check's
    /// database, before and after).
    ReplicaReads { min_share: f64, hint: String },
    /// The primary read at most `max_per_request` pages per request of the check load that
    /// got an answer.
    PrimaryReads { max_per_request: f64, hint: String },
    /// At most `max` answers of the load had this HTTP status (e.g. 401 for logged-out users).
    Responses { status: u16, max: u64, hint: String },
    /// `[check.rate_limit]`: the kind `request` (a client sending over its limit) got at most
    /// `max_rate` successful answers per second of the load, and what it did not get was
    /// refused with 429 (at most 1% of its requests failed otherwise).
    RateLimit {
        request: String,
        max_rate: f64,
        hint: String,
    },
    /// At least `min_ratio` of the answers to `request` were served in front of the instances
    /// (their `http_requests_total{route}` rose by less than the answers the load got).
    EdgeCache {
        request: String,
        route: String,
        min_ratio: f64,
        hint: String,
    },
    /// `[check.request_ids]`: every answered request of the load got its ID back in `header`.
    RequestIdsEchoed { header: String, hint: String },
    /// `[check.request_ids]`: every answered request has at least one JSON log line with its
    /// ID as `request_id`, and no non-JSON line carries an ID of the load.
    RequestIdsLogged { header: String, hint: String },
    /// `[check.request_ids] propagated`: every call the stub dependency received during the
    /// load carried, in `header`, the ID of a request in flight at that moment.
    /// Only the calls whose path starts with `path` when given (others serve no request).
    RequestIdsPropagated {
        header: String,
        path: Option<String>,
        hint: String,
    },
    /// `[check.route_metrics]`: the instances' `<histogram>_count` rose, during the load, for a
    /// `label` value matching each of `routes` (the check mix's path templates), by at least
    /// `min_ratio` of the answers in all.
    RouteMetrics {
        histogram: String,
        label: String,
        min_ratio: f64,
        /// The distinct paths of the check's mix, e.g. `/orders/{order_id}`.
        routes: Vec<String>,
        hint: String,
    },
    /// `[check.drain]`: after the load, `sql` (one integer, the work not done yet) reaches 0
    /// within `within` ("work drained after the load").
    Drain {
        sql: String,
        within: Duration,
        hint: String,
    },
    /// `[check.queue_depth]`: the Redis key `key` (a stream: its consumer groups' lag plus
    /// pending, else its length; a list: its length) held at most `max` entries at every
    /// second of the load ("queue depth during the load").
    QueueDepth { key: String, max: u64, hint: String },
}

impl CheckLine {
    /// Whether the line is measured from the check load (latency, errors, refusals, shares,
    /// calls, Redis's hits and refused writes). The rest (answers, fresh reads, plans, pool
    /// settings, exported metrics, instances up, key expiries) is judged the same without it: what `sdlab check --no-load` still judges.
    pub fn needs_load(&self) -> bool {
        match self {
            CheckLine::Slo { .. }
            | CheckLine::Connections { .. }
            | CheckLine::RefusedConnections { .. }
            | CheckLine::Balance { .. }
            | CheckLine::Served { .. }
            | CheckLine::DependencyCalls { .. }
            | CheckLine::CacheHits { .. }
            | CheckLine::ReplicaReads { .. }
            | CheckLine::PrimaryReads { .. }
            | CheckLine::RejectedWrites { .. }
            | CheckLine::Responses { .. }
            | CheckLine::RateLimit { .. }
            | CheckLine::EdgeCache { .. }
            | CheckLine::RequestIdsEchoed { .. }
            | CheckLine::RequestIdsLogged { .. }
            | CheckLine::RequestIdsPropagated { .. }
            | CheckLine::RouteMetrics { .. }
            | CheckLine::Drain { .. }
            | CheckLine::QueueDepth { .. } => true,
            CheckLine::Plan { .. }
            | CheckLine::CacheTtl { .. }
            | CheckLine::FreshReads { .. }
            | CheckLine::MetricsPresent { .. }
            | CheckLine::PoolBudget { .. }
            | CheckLine::AcquireTimeout { .. }
            | CheckLine::InstancesUp { .. }
            | CheckLine::Answers => false,
        }
    }

    /// What the learner reads when the line fails.
    pub fn hint(&self) -> &str {
        match self {
            CheckLine::Slo { hint, .. }
            | CheckLine::Plan { hint, .. }
            | CheckLine::Connections { hint, .. }
            | CheckLine::MetricsPresent { hint, .. }
            | CheckLine::PoolBudget { hint, .. }
            | CheckLine::AcquireTimeout { hint, .. }
            | CheckLine::RefusedConnections { hint, .. }
            | CheckLine::Balance { hint, .. }
            | CheckLine::Served { hint, .. }
            | CheckLine::DependencyCalls { hint, .. }
            | CheckLine::CacheHits { hint, .. }
            | CheckLine::RejectedWrites { hint, .. }
            | CheckLine::CacheTtl { hint, .. }
            | CheckLine::FreshReads { hint, .. }
            | CheckLine::ReplicaReads { hint, .. }
            | CheckLine::PrimaryReads { hint, .. }
            | CheckLine::Responses { hint, .. }
            | CheckLine::RateLimit { hint, .. }
            | CheckLine::EdgeCache { hint, .. }
            | CheckLine::RequestIdsEchoed { hint, .. }
            | CheckLine::RequestIdsLogged { hint, .. }
            | CheckLine::RequestIdsPropagated { hint, .. }
            | CheckLine::RouteMetrics { hint, .. }
            | CheckLine::Drain { hint, .. }
            | CheckLine::QueueDepth { hint, .. }
            | CheckLine::InstancesUp { hint } => hint,
            CheckLine::Answers => {
                "An answer was wrong: see the request and the right answer above."
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SloMetric {
    Latency {
        percentile: Percentile,
        max: Duration,
    },
    ErrorRate {
        max: f64,
    },
    AchievedRate {
        min_ratio: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P90,
    P95,
    P99,
}

impl Percentile {
    pub fn label(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P95 => "p95",
            Percentile::P99 => "p99",
        }
    }
}
