//! [`Db`]: a PostgreSQL pool that reports how it is doing.
//!
//! Metrics (gauges are sampled when `/metrics` is rendered, so they are always current):
//! - `db_pool_max`: the configured ceiling (`max_connections`).
//! - `db_pool_size`: connections open now; `db_pool_idle`: of those, idle;
//!   `db_pool_in_use`: of those, lent to a handler.
//! - `db_pool_waiting`: handlers waiting in [`Db::conn`] for a connection.
//! - `db_pool_acquire_seconds`: histogram of that wait.
//! - `db_pool_acquire_timeouts_total`: waits that gave up after `acquire_timeout`.
//! - `db_pool_acquire_timeout_seconds`: that `acquire_timeout` (the longest, with several
//!   pools): a handler waits at most this long before answering 503.
//! - `db_pool_connections_opened_total`: new PostgreSQL connections the pool opened. Under
//!   steady load this should stay flat: a pool exists so connections are reused.

use crate::error::{AppError, KitError};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Postgres;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub const DB_POOL_MAX: &str = "db_pool_max";
pub const DB_POOL_SIZE: &str = "db_pool_size";
pub const DB_POOL_IDLE: &str = "db_pool_idle";
pub const DB_POOL_IN_USE: &str = "db_pool_in_use";
pub const DB_POOL_WAITING: &str = "db_pool_waiting";
pub const DB_POOL_ACQUIRE_SECONDS: &str = "db_pool_acquire_seconds";
pub const DB_POOL_ACQUIRE_TIMEOUTS_TOTAL: &str = "db_pool_acquire_timeouts_total";
pub const DB_POOL_ACQUIRE_TIMEOUT_SECONDS: &str = "db_pool_acquire_timeout_seconds";
pub const DB_POOL_CONNECTIONS_OPENED_TOTAL: &str = "db_pool_connections_opened_total";

/// How big the pool may grow and how long a handler may wait for a connection. No
/// `Default`: each service states its numbers and why, because that choice is often the
/// lesson.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Most connections this process holds; all instances' maxima together must fit under
    /// the server's max_connections minus its reserved slots.
    pub max_connections: u32,
    /// Connections opened at start and kept even when idle, so the first requests do not
    /// pay the connect cost.
    pub min_connections: u32,
    /// How long [`Db::conn`] waits before answering 503 "database busy".
    pub acquire_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Option<Duration>,
}

/// A shared, instrumented connection pool. Cloning is cheap (it is an `Arc` inside): create
/// one at startup and put it in the router state.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// Creates the pool and opens `min_connections` right away, so a wrong URL fails at
    /// start rather than on the first request.
    pub async fn connect(url: &str, options: DbOptions) -> Result<Db, KitError> {
        let pool = pool_options(&options)
            .connect(url)
            .await
            .map_err(|source| KitError::DbConnect {
                url: redact(url),
                source,
            })?;
        Ok(Db::ready(pool, &options))
    }

    /// Creates the pool without connecting; the first [`Db::conn`] opens the first
    /// connection. For tests, and for services that must start before their database.
    pub fn connect_lazy(url: &str, options: DbOptions) -> Result<Db, KitError> {
        let pool =
            pool_options(&options)
                .connect_lazy(url)
                .map_err(|source| KitError::DbConnect {
                    url: redact(url),
                    source,
                })?;
        Ok(Db::ready(pool, &options))
    }

    fn ready(pool: PgPool, options: &DbOptions) -> Db {
        tracing::info!(
            max = options.max_connections,
            min = options.min_connections,
            acquire_timeout_ms = options.acquire_timeout.as_millis() as u64,
            "database pool ready"
        );
        register(pool.clone());
        Db { pool }
    }

    /// Borrows a connection for one request, measuring the wait. Gives up after the pool's
    /// acquire timeout with a 503 "database busy" (see [`AppError`]), which is better than
    /// a request hanging until the client gives up.
    pub async fn conn(&self) -> Result<PoolConnection<Postgres>, AppError> {
        let started = Instant::now();
        let waiting = Waiting::enter();
        let result = self.pool.acquire().await;
        drop(waiting);
        metrics::histogram!(DB_POOL_ACQUIRE_SECONDS).record(started.elapsed().as_secs_f64());
        if let Err(sqlx::Error::PoolTimedOut) = &result {
            metrics::counter!(DB_POOL_ACQUIRE_TIMEOUTS_TOTAL).increment(1);
        }
        Ok(result?)
    }

    /// The raw pool, for code that wants `sqlx::query(..).fetch_all(db.pool())` directly.
    /// Its waits are not measured; prefer [`Db::conn`] on request paths.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn pool_options(options: &DbOptions) -> PgPoolOptions {
    crate::metrics::handle();
    PgPoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(options.min_connections)
        .acquire_timeout(options.acquire_timeout)
        .idle_timeout(options.idle_timeout)
        .after_connect(|_conn, _meta| {
            Box::pin(async {
                metrics::counter!(DB_POOL_CONNECTIONS_OPENED_TOTAL).increment(1);
                Ok(())
            })
        })
}

/// Counts a waiter until dropped, so a request cancelled while waiting leaves the gauge.
struct Waiting;

impl Waiting {
    fn enter() -> Waiting {
        metrics::gauge!(DB_POOL_WAITING).increment(1.0);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!(DB_POOL_WAITING).decrement(1.0);
    }
}

/// Every pool created in this process, so `/metrics` can sample them. A service normally
/// has one; with several, the gauges are their sums (what this process holds in total).
static POOLS: Mutex<Vec<PgPool>> = Mutex::new(Vec::new());

fn register(pool: PgPool) {
    POOLS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pool);
}

/// Sets the pool gauges from the pools' current state. Called by the `/metrics` handler
/// just before rendering. A process with no pool exports no pool gauges at all, and that
/// absence is itself a signal.
pub(crate) fn sample_pools() {
    let pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    if pools.is_empty() {
        return;
    }
    let (mut max, mut size, mut idle) = (0u64, 0u64, 0u64);
    let mut acquire_timeout = Duration::ZERO;
    for pool in pools.iter().filter(|pool| !pool.is_closed()) {
        max += u64::from(pool.options().get_max_connections());
        acquire_timeout = acquire_timeout.max(pool.options().get_acquire_timeout());
        size += u64::from(pool.size());
        idle += pool.num_idle() as u64;
    }
    metrics::gauge!(DB_POOL_MAX).set(max as f64);
    metrics::gauge!(DB_POOL_SIZE).set(size as f64);
    metrics::gauge!(DB_POOL_IDLE).set(idle as f64);
    metrics::gauge!(DB_POOL_IN_USE).set(size.saturating_sub(idle) as f64);
    metrics::gauge!(DB_POOL_ACQUIRE_TIMEOUT_SECONDS).set(acquire_timeout.as_secs_f64());
    // Registered here too so it shows as 0 before the first wait rather than missing.
    metrics::gauge!(DB_POOL_WAITING).increment(0.0);
    metrics::counter!(DB_POOL_ACQUIRE_TIMEOUTS_TOTAL).increment(0);
}

pub(crate) fn describe() {
    metrics::describe_gauge!(
        DB_POOL_MAX,
        "Most connections the pool may open (max_connections)."
    );
    metrics::describe_gauge!(DB_POOL_SIZE, "Connections the pool holds open now.");
    metrics::describe_gauge!(DB_POOL_IDLE, "Open connections not lent to a handler.");
    metrics::describe_gauge!(DB_POOL_IN_USE, "Open connections lent to a handler.");
    metrics::describe_gauge!(DB_POOL_WAITING, "Handlers waiting for a connection.");
    metrics::describe_gauge!(
        DB_POOL_ACQUIRE_TIMEOUT_SECONDS,
        "How long a handler waits for a connection before giving up (acquire_timeout)."
    );
    metrics::describe_histogram!(
        DB_POOL_ACQUIRE_SECONDS,
        metrics::Unit::Seconds,
        "Time handlers waited for a pooled connection."
    );
    metrics::describe_counter!(
        DB_POOL_ACQUIRE_TIMEOUTS_TOTAL,
        "Waits for a connection that gave up after the acquire timeout (answered 503)."
    );
    metrics::describe_counter!(
        DB_POOL_CONNECTIONS_OPENED_TOTAL,
        "New PostgreSQL connections opened by the pool."
    );
}

/// The URL without its password, for error messages (database and Redis URLs alike).
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:pw@h:1/d"), "postgres://u:***@h:1/d");
        assert_eq!(redact("postgres://u@h:1/d"), "postgres://u@h:1/d");
        assert_eq!(redact("postgres://h/d"), "postgres://h/d");
    }
}
