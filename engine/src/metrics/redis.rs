//! Redis INFO into one second's [`RedisSample`]: rates from two INFOs a second apart.

use std::collections::BTreeMap;
use std::time::Instant;

/// One second of the scenario's Redis, from INFO: rates are per second since the previous
/// sample (None on the first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisSample {
    pub hits_per_second: Option<f64>,
    pub misses_per_second: Option<f64>,
    /// Hits over lookups in that second (None without lookups).
    pub hit_ratio: Option<f64>,
    pub used_memory: u64,
    /// 0: no limit.
    pub maxmemory: u64,
    pub evicted_per_second: Option<f64>,
    /// Writes refused with OOM since the start (`errorstat_OOM`; 0 before Redis 6.2).
    pub rejected_writes: u64,
    pub ops_per_second: u64,
    pub clients: u64,
    /// INFO's counters since Redis started, as read (the exporter's Prometheus counters).
    pub hits_total: u64,
    pub misses_total: u64,
    pub evicted_total: u64,
}

/// The INFO counters a [`RedisSample`]'s rates come from.
#[derive(Debug, Clone, Copy)]
pub(super) struct RedisCounters {
    hits: u64,
    misses: u64,
    evicted: u64,
    at: Instant,
}

/// Commands Redis refused for its maxmemory since it started, from INFO's
/// `errorstat_OOM:count=3,...` (0 when none was, and before Redis 6.2).
pub(crate) fn redis_rejected_writes(info: &BTreeMap<String, String>) -> u64 {
    info.get("errorstat_OOM")
        .and_then(|v| v.strip_prefix("count="))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A [`RedisSample`] from one INFO (and the previous one's counters, for the rates).
pub(super) fn redis_sample(
    info: &BTreeMap<String, String>,
    previous: Option<RedisCounters>,
    now: Instant,
) -> (RedisSample, RedisCounters) {
    let n = |k: &str| {
        info.get(k)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let rejected = redis_rejected_writes(info);
    let counters = RedisCounters {
        hits: n("keyspace_hits"),
        misses: n("keyspace_misses"),
        evicted: n("evicted_keys"),
        at: now,
    };
    let rate = |f: fn(&RedisCounters) -> u64| {
        previous.map(|p| {
            let secs = now.duration_since(p.at).as_secs_f64().max(0.001);
            f(&counters).saturating_sub(f(&p)) as f64 / secs
        })
    };
    let hits = rate(|c| c.hits);
    let misses = rate(|c| c.misses);
    let sample = RedisSample {
        hits_per_second: hits,
        misses_per_second: misses,
        hit_ratio: match (hits, misses) {
            (Some(h), Some(m)) if h + m > 0.0 => Some(h / (h + m)),
            _ => None,
        },
        used_memory: n("used_memory"),
        maxmemory: n("maxmemory"),
        evicted_per_second: rate(|c| c.evicted),
        rejected_writes: rejected,
        ops_per_second: n("instantaneous_ops_per_sec"),
        clients: n("connected_clients"),
        hits_total: counters.hits,
        misses_total: counters.misses,
        evicted_total: counters.evicted,
    };
    (sample, counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn redis_rates_and_the_hit_ratio_come_from_two_infos() {
        let info = |hits: u64, misses: u64, evicted: u64| {
            BTreeMap::from([
                ("keyspace_hits".to_string(), hits.to_string()),
                ("keyspace_misses".to_string(), misses.to_string()),
                ("evicted_keys".to_string(), evicted.to_string()),
                ("used_memory".to_string(), "1048576".to_string()),
                ("maxmemory".to_string(), "2097152".to_string()),
                ("errorstat_OOM".to_string(), "count=7".to_string()),
                ("instantaneous_ops_per_sec".to_string(), "120".to_string()),
                ("connected_clients".to_string(), "3".to_string()),
            ])
        };
        let t0 = Instant::now();
        let (first, c) = redis_sample(&info(10, 10, 0), None, t0);
        assert_eq!((first.hits_per_second, first.hit_ratio), (None, None));
        assert_eq!((first.rejected_writes, first.clients), (7, 3));
        let (second, _) = redis_sample(&info(100, 20, 5), Some(c), t0 + Duration::from_secs(2));
        assert_eq!(second.hits_per_second, Some(45.0));
        assert_eq!(second.misses_per_second, Some(5.0));
        assert_eq!(second.hit_ratio, Some(0.9));
        assert_eq!(second.evicted_per_second, Some(2.5));
        assert_eq!((second.used_memory, second.maxmemory), (1 << 20, 2 << 20));
    }
}
