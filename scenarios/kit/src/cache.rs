//! [`Cache`]: a Redis client that reports how it is doing (feature `redis`).
//!
//! # Why a `ConnectionManager`, and not a pool
//! [`Cache`] wraps redis-rs's [`redis::aio::ConnectionManager`]: one multiplexed connection
//! per process. Concurrent handlers' commands are pipelined on it (each waits only for its
//! own reply), and when the connection drops it reconnects by itself. Redis answers one
//! command at a time on a single thread, so several connections from one process buy
//! nothing that pipelining does not; a pool (bb8, deadpool) would add a checkout wait, the
//! very thing `db_pool_acquire_seconds` measures for PostgreSQL, for no gain. fred does the
//! same job with far more machinery (cluster, sentinel, its own pools) than a lab needs.
//!
//! # Errors are answers, in bounded time
//! Every command gives up after `response_timeout`, including while the manager is
//! reconnecting to a Redis that went away, so a handler answers 503 "cache unavailable"
//! (see [`crate::AppError`]) instead of hanging. A cache that is down is a choice for the
//! handler: fail, or read the source of truth and skip the cache.
//!
//! # Metrics
//! - `cache_hits_total` / `cache_misses_total`: [`Cache::get`] that found / did not find
//!   the key. hits / (hits + misses) is the hit ratio.
//! - `cache_command_seconds{command}`: histogram of each command's round trip (`GET`, `SET`,
//!   `DEL`, or the name of a [`Cache::query`] command).
//! - `cache_errors_total{kind}`: failed commands; `kind` is `oom` (Redis refused a write
//!   because `maxmemory` is reached and the policy is `noeviction`), `timeout`, `io`
//!   (connection refused or lost) or `other`.

use crate::error::KitError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError};
use std::time::{Duration, Instant};

pub const CACHE_HITS_TOTAL: &str = "cache_hits_total";
pub const CACHE_MISSES_TOTAL: &str = "cache_misses_total";
pub const CACHE_COMMAND_SECONDS: &str = "cache_command_seconds";
pub const CACHE_ERRORS_TOTAL: &str = "cache_errors_total";

/// The `kind` labels of `cache_errors_total`.
pub const ERROR_KINDS: &[&str] = &["oom", "timeout", "io", "other"];

/// How long a command and a connection attempt may take. No `Default`: each service states
/// its numbers, because a cache that answers slower than the database it shields is worse
/// than none.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    /// The longest a command may take, reply included (and waiting for a reconnect); then
    /// it fails with [`CacheError::Timeout`].
    pub response_timeout: Duration,
    /// The longest one attempt to open the connection may take.
    pub connection_timeout: Duration,
}

/// A shared, instrumented Redis client. Cloning is cheap (an `Arc` inside): create one at
/// startup and put it in the router state.
#[derive(Clone, Debug)]
pub struct Cache {
    manager: ConnectionManager,
    response_timeout: Duration,
}

/// The longest pause between reconnection attempts, so a Redis that comes back (the lab
/// restarts it on Reset) is used again within about a second.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

impl Cache {
    /// Connects to Redis at `url` (`redis://127.0.0.1:6379`, the lab's `REDIS_URL`) and
    /// waits for the connection, so a wrong URL fails at start rather than on the first
    /// request.
    pub async fn connect(url: &str, options: CacheOptions) -> Result<Cache, KitError> {
        crate::metrics::handle();
        describe();
        let connect_error = |source| KitError::CacheConnect {
            url: crate::db::redact(url),
            source,
        };
        let client = redis::Client::open(url).map_err(connect_error)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connection_timeout))
            .set_max_delay(MAX_RECONNECT_DELAY);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_error)?;
        // Registered at 0 so charts and checks see the series before the first event.
        metrics::counter!(CACHE_HITS_TOTAL).increment(0);
        metrics::counter!(CACHE_MISSES_TOTAL).increment(0);
        for kind in ERROR_KINDS {
            metrics::counter!(CACHE_ERRORS_TOTAL, "kind" => *kind).increment(0);
        }
        tracing::info!(
            response_timeout_ms = options.response_timeout.as_millis() as u64,
            "cache connected"
        );
        Ok(Cache {
            manager,
            response_timeout: options.response_timeout,
        })
    }

    /// `GET key`: the value, or `None` when the key is absent (or expired). Counts a hit or
    /// a miss.
    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let value: Option<String> = self.run("GET", redis::cmd("GET").arg(key)).await?;
        let counter = if value.is_some() {
            CACHE_HITS_TOTAL
        } else {
            CACHE_MISSES_TOTAL
        };
        metrics::counter!(counter).increment(1);
        Ok(value)
    }

    /// `SET key value EX seconds` (or `PX milliseconds` when `ttl` is not a whole number of
    /// seconds): the entry expires after `ttl`. A `ttl` under 1 ms is
    /// [`CacheError::InvalidTtl`]: zero means "already expired", never "forever".
    pub async fn set_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if ttl.subsec_nanos() == 0 && ttl.as_secs() > 0 {
            cmd.arg("EX").arg(ttl.as_secs());
        } else if ttl.as_millis() > 0 {
            cmd.arg("PX")
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        } else {
            count_error("other");
            return Err(CacheError::InvalidTtl { ttl });
        }
        self.run("SET", &cmd).await
    }

    /// `SET key value` with no expiry: the entry stays until it is deleted, overwritten or
    /// evicted, however stale it gets. Prefer [`Cache::set_ex`].
    pub async fn set(&self, key: &str, value: &str) -> Result<(), CacheError> {
        self.run("SET", redis::cmd("SET").arg(key).arg(value)).await
    }

    /// `DEL key`: true when a key was removed, false when there was none.
    pub async fn del(&self, key: &str) -> Result<bool, CacheError> {
        let removed: i64 = self.run("DEL", redis::cmd("DEL").arg(key)).await?;
        Ok(removed > 0)
    }

    /// Any other command, measured and bounded like the rest:
    /// `cache.query::<i64>(redis::cmd("TTL").arg(key))`, `redis::cmd("INCR")`, ...
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, CacheError> {
        self.run(&command_name(cmd), cmd).await
    }

    async fn run<T: FromRedisValue>(&self, command: &str, cmd: &Cmd) -> Result<T, CacheError> {
        let mut manager = self.manager.clone();
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.response_timeout, cmd.query_async(&mut manager));
        let result = match outcome.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(CacheError::Redis {
                command: command.to_owned(),
                source,
            }),
            Err(_elapsed) => Err(CacheError::Timeout {
                command: command.to_owned(),
                timeout: self.response_timeout,
            }),
        };
        metrics::histogram!(CACHE_COMMAND_SECONDS, "command" => command.to_owned())
            .record(started.elapsed().as_secs_f64());
        if let Err(err) = &result {
            count_error(err.kind());
        }
        result
    }
}

fn count_error(kind: &'static str) {
    metrics::counter!(CACHE_ERRORS_TOTAL, "kind" => kind).increment(1);
}

/// The command's name in capitals (`TTL`, `INCR`), the `command` label. Anything that does
/// not look like a command name is `OTHER`, so the number of series stays bounded.
fn command_name(cmd: &Cmd) -> String {
    let first = cmd.args_iter().next().and_then(|arg| match arg {
        redis::Arg::Simple(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    });
    match first {
        Some(name)
            if !name.is_empty()
                && name.len() <= 32
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            name.to_ascii_uppercase()
        }
        _ => "OTHER".to_owned(),
    }
}

/// Why a cache command failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Redis answered with an error (`OOM`, `WRONGTYPE`, ...) or could not be reached.
    #[error("redis {command} failed: {source}")]
    Redis {
        command: String,
        #[source]
        source: RedisError,
    },
    /// No answer within `response_timeout` (Redis is down, restarting or overloaded).
    #[error("redis {command} got no answer within {timeout:?}")]
    Timeout { command: String, timeout: Duration },
    /// [`Cache::set_ex`] with a TTL Redis cannot express (under 1 ms).
    #[error(
        "cache TTL {ttl:?} is too short: Redis needs at least 1 ms \
         (0 does not mean forever; use set for no expiry)"
    )]
    InvalidTtl { ttl: Duration },
}

impl CacheError {
    /// True when Redis refused a write because `maxmemory` is reached and its policy is
    /// `noeviction` (the `-OOM command not allowed when used memory > 'maxmemory'` reply).
    pub fn is_oom(&self) -> bool {
        matches!(self, CacheError::Redis { source, .. } if source.code() == Some("OOM"))
    }

    /// True when the command got no answer in time.
    pub fn is_timeout(&self) -> bool {
        match self {
            CacheError::Timeout { .. } => true,
            CacheError::Redis { source, .. } => source.is_timeout(),
            CacheError::InvalidTtl { .. } => false,
        }
    }

    /// The `kind` label this error counts under in `cache_errors_total`: `oom`, `timeout`,
    /// `io` or `other`.
    pub fn kind(&self) -> &'static str {
        if self.is_oom() {
            "oom"
        } else if self.is_timeout() {
            "timeout"
        } else if matches!(self, CacheError::Redis { source, .. } if source.is_io_error()) {
            "io"
        } else {
            "other"
        }
    }
}

fn describe() {
    metrics::describe_counter!(
        CACHE_HITS_TOTAL,
        "Cache GETs that found the key (hit ratio = hits / (hits + misses))."
    );
    metrics::describe_counter!(
        CACHE_MISSES_TOTAL,
        "Cache GETs that did not find the key (absent, expired or evicted)."
    );
    metrics::describe_histogram!(
        CACHE_COMMAND_SECONDS,
        metrics::Unit::Seconds,
        "Round trip of each Redis command, by command name."
    );
    metrics::describe_counter!(
        CACHE_ERRORS_TOTAL,
        "Failed Redis commands by kind: oom (write refused at maxmemory), timeout, io, other."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_label_is_the_capitalised_name_or_other() {
        assert_eq!(command_name(redis::cmd("ttl").arg("k")), "TTL");
        assert_eq!(command_name(redis::cmd("INCRBY").arg("k").arg(2)), "INCRBY");
        assert_eq!(command_name(redis::Cmd::new().arg("user:42")), "OTHER");
        assert_eq!(command_name(&redis::Cmd::new()), "OTHER");
    }

    #[test]
    fn a_zero_or_sub_millisecond_ttl_is_other_not_oom() {
        let err = CacheError::InvalidTtl {
            ttl: Duration::ZERO,
        };
        assert!(!err.is_oom());
        assert_eq!(err.kind(), "other");
    }
}
