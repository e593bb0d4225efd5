//! What the check reads from the scenario's Redis: its counters before and after the load
//! (hits, misses, writes refused for maxmemory) and, after everything else, every key's
//! expiry. Judged into the lines `[check.cache_hits]`, `[check.rejected_writes]` and
//! `[check.cache_ttl]`.
//!
//! The hit ratio is Redis's own (`keyspace_hits / (keyspace_hits + keyspace_misses)` over the
//! load), not the service's, so a service cannot report a ratio it did not get.

use std::collections::BTreeMap;
use std::time::Duration;

use redis_server_embedded::Reply;

use super::{fmt_duration, LineResult};

/// Redis's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisCounters {
    pub hits: u64,
    pub misses: u64,
    /// Commands refused with OOM (`errorstat_OOM`).
    pub rejected: u64,
}

impl RedisCounters {
    pub fn from_info(info: &BTreeMap<String, String>) -> RedisCounters {
        let n = |k: &str| {
            info.get(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        RedisCounters {
            hits: n("keyspace_hits"),
            misses: n("keyspace_misses"),
            rejected: crate::metrics::redis_rejected_writes(info),
        }
    }

    /// What happened between `self` (before) and `after`.
    pub fn until(self, after: RedisCounters) -> RedisCounters {
        RedisCounters {
            hits: after.hits.saturating_sub(self.hits),
            misses: after.misses.saturating_sub(self.misses),
            rejected: after.rejected.saturating_sub(self.rejected),
        }
    }
}

/// Reads the counters of the Redis on 127.0.0.1:`port`.
pub async fn counters(port: u16) -> Result<RedisCounters, String> {
    redis_server_embedded::info(port)
        .await
        .map(|info| RedisCounters::from_info(&info))
        .map_err(|e| e.to_string())
}

/// Every key's expiry, after the check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyExpiries {
    pub keys: u64,
    /// Keys that never expire, and one of them.
    pub without_ttl: u64,
    pub without_ttl_example: Option<String>,
    /// The longest time to live left, and its key.
    pub longest: Option<(Duration, String)>,
}

/// One script, so the keys are read in one round trip and none expires between two calls.
const EXPIRIES_SCRIPT: &str = r"
local keys = redis.call('KEYS', '*')
local none, none_key, longest, long_key = 0, '', -1, ''
for _, k in ipairs(keys) do
  local t = redis.call('PTTL', k)
  if t == -1 then
    none = none + 1
    if none_key == '' then none_key = k end
  elseif t > longest then
    longest = t
    long_key = k
  end
end
return {#keys, none, longest, none_key, long_key}
";

/// Reads every key's expiry from the Redis on 127.0.0.1:`port`.
pub async fn expiries(port: u16) -> Result<KeyExpiries, String> {
    let reply = redis_server_embedded::command(port, &["EVAL", EXPIRIES_SCRIPT, "0"])
        .await
        .map_err(|e| e.to_string())?;
    let Reply::Array(Some(items)) = reply else {
        return Err(format!("unexpected reply to the expiry script: {reply:?}"));
    };
    let int = |i: usize| match items.get(i) {
        Some(Reply::Integer(n)) => Ok(*n),
        other => Err(format!(
            "unexpected item {i} of the expiry script: {other:?}"
        )),
    };
    let text = |i: usize| items.get(i).and_then(Reply::text).filter(|t| !t.is_empty());
    let longest = int(2)?;
    Ok(KeyExpiries {
        keys: u64::try_from(int(0)?).unwrap_or(0),
        without_ttl: u64::try_from(int(1)?).unwrap_or(0),
        without_ttl_example: text(3),
        longest: u64::try_from(longest)
            .ok()
            .map(|ms| (Duration::from_millis(ms), text(4).unwrap_or_default())),
    })
}

/// `[check.cache_hits]`: Redis's hit ratio over the load.
pub fn hits_line(
    counters: Option<&Result<RedisCounters, String>>,
    min_ratio: f64,
    hint: &str,
) -> LineResult {
    let required = format!(">= {:.0}%", min_ratio * 100.0);
    let (measured, passed) = match counters {
        None => ("no Redis".to_string(), false),
        Some(Err(e)) => (format!("not read: {e}"), false),
        Some(Ok(c)) if c.hits + c.misses == 0 => {
            ("0 lookups (nothing read from Redis)".to_string(), false)
        }
        Some(Ok(c)) => {
            let ratio = c.hits as f64 / (c.hits + c.misses) as f64;
            (
                format!(
                    "{:.1}% ({} hits, {} misses)",
                    ratio * 100.0,
                    c.hits,
                    c.misses
                ),
                ratio >= min_ratio,
            )
        }
    };
    super::evaluate::result(
        "Redis hit ratio".to_string(),
        measured,
        required,
        passed,
        hint,
    )
}

/// `[check.rejected_writes]`: writes Redis refused for its maxmemory.
pub fn rejected_line(
    counters: Option<&Result<RedisCounters, String>>,
    max: u64,
    hint: &str,
) -> LineResult {
    let (measured, passed) = match counters {
        None => ("no Redis".to_string(), false),
        Some(Err(e)) => (format!("not read: {e}"), false),
        Some(Ok(c)) => (c.rejected.to_string(), c.rejected <= max),
    };
    super::evaluate::result(
        "writes Redis refused (OOM)".to_string(),
        measured,
        format!("<= {max}"),
        passed,
        hint,
    )
}

/// `[check.cache_ttl]`: every key expires, within `max`.
pub fn ttl_line(
    expiries: Option<&Result<KeyExpiries, String>>,
    max: Duration,
    hint: &str,
) -> LineResult {
    let required = format!("every key, within {}", fmt_duration(max));
    let (measured, passed) = match expiries {
        None => ("no Redis".to_string(), false),
        Some(Err(e)) => (format!("not read: {e}"), false),
        Some(Ok(k)) if k.keys == 0 => ("no keys".to_string(), true),
        Some(Ok(k)) if k.without_ttl > 0 => (
            format!(
                "{} of {} keys never expire (e.g. {:?})",
                k.without_ttl,
                k.keys,
                k.without_ttl_example.as_deref().unwrap_or("")
            ),
            false,
        ),
        Some(Ok(k)) => match &k.longest {
            Some((ttl, key)) => (
                format!(
                    "{} keys, longest {} left ({key:?})",
                    k.keys,
                    fmt_duration(*ttl)
                ),
                *ttl <= max,
            ),
            None => (format!("{} keys", k.keys), true),
        },
    };
    super::evaluate::result(
        "cached keys expire".to_string(),
        measured,
        required,
        passed,
        hint,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_over_the_load_are_the_difference_of_two_infos() {
        let info = |hits: u64, misses: u64, oom: u64| {
            let mut m = BTreeMap::new();
            m.insert("keyspace_hits".to_string(), hits.to_string());
            m.insert("keyspace_misses".to_string(), misses.to_string());
            if oom > 0 {
                m.insert("errorstat_OOM".to_string(), format!("count={oom}"));
            }
            m
        };
        let before = RedisCounters::from_info(&info(10, 5, 0));
        let after = RedisCounters::from_info(&info(910, 105, 3));
        assert_eq!(
            before.until(after),
            RedisCounters {
                hits: 900,
                misses: 100,
                rejected: 3
            }
        );
    }

    #[test]
    fn the_hit_ratio_line_needs_lookups_and_the_ratio() {
        let c = |hits, misses| {
            Ok(RedisCounters {
                hits,
                misses,
                rejected: 0,
            })
        };
        assert!(hits_line(Some(&c(900, 100)), 0.8, "h").passed);
        let low = hits_line(Some(&c(500, 500)), 0.8, "h");
        assert!(!low.passed && low.measured.starts_with("50.0%"), "{low:?}");
        assert!(!hits_line(Some(&c(0, 0)), 0.8, "h").passed);
        assert!(!hits_line(None, 0.8, "h").passed);
    }

    #[test]
    fn a_key_without_expiry_or_past_the_limit_fails_the_ttl_line() {
        let max = Duration::from_secs(60);
        let fine = KeyExpiries {
            keys: 10,
            longest: Some((Duration::from_secs(59), "product:1".into())),
            ..KeyExpiries::default()
        };
        assert!(ttl_line(Some(&Ok(fine)), max, "h").passed);
        let forever = KeyExpiries {
            keys: 10,
            without_ttl: 2,
            without_ttl_example: Some("product:7".into()),
            ..KeyExpiries::default()
        };
        let line = ttl_line(Some(&Ok(forever)), max, "h");
        assert!(
            !line.passed && line.measured.contains("product:7"),
            "{line:?}"
        );
        let long = KeyExpiries {
            keys: 10,
            longest: Some((Duration::from_secs(86_000), "product:1".into())),
            ..KeyExpiries::default()
        };
        assert!(!ttl_line(Some(&Ok(long)), max, "h").passed);
    }

    #[test]
    fn refused_writes_are_judged_against_the_maximum() {
        let c = Ok(RedisCounters {
            hits: 1,
            misses: 1,
            rejected: 4,
        });
        let line = rejected_line(Some(&c), 0, "h");
        assert!(!line.passed && line.measured == "4", "{line:?}");
    }
}
