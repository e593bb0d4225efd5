//! Shared pieces of the benchmark binaries: the stall schedule of the accuracy run.
//!
//! The accuracy server stalls for `STALL` at the start of every `PERIOD`, counted from the
//! Unix epoch, so the server and the reference calculation agree on the windows without
//! talking to each other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the accuracy server stalls.
pub const PERIOD: Duration = Duration::from_secs(10);
/// How long each stall lasts.
pub const STALL: Duration = Duration::from_secs(1);

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// If `at_us` falls in a stall window, when that window ends (µs since the epoch).
pub fn stall_end(at_us: u64) -> Option<u64> {
    let period = PERIOD.as_micros() as u64;
    let into = at_us % period;
    (into < STALL.as_micros() as u64).then(|| at_us - into + STALL.as_micros() as u64)
}

/// The latency a request due at `due_us` would see from an ideal server that answers at once
/// except during stalls: the rest of the stall. This is the coordinated-omission-corrected
/// truth (what wrk2 reports), computed from the schedule instead of measured.
pub fn ideal_latency_us(due_us: u64) -> u64 {
    stall_end(due_us).map_or(0, |end| end - due_us)
}

/// p50, p99 and p99.9 (µs) of the ideal latencies of an open-model schedule: one request due
/// every `1/rate` s from `start_us` for `duration`.
pub fn reference_percentiles(start_us: u64, rate: f64, duration: Duration) -> (u64, u64, u64) {
    let count = (rate * duration.as_secs_f64()) as u64;
    let mut latencies: Vec<u64> = (0..count)
        .map(|i| ideal_latency_us(start_us + (i as f64 * 1e6 / rate) as u64))
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((q * latencies.len() as f64).ceil() as usize).saturating_sub(1);
        latencies.get(index).copied().unwrap_or(0)
    };
    (at(0.50), at(0.99), at(0.999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_windows_start_each_period() {
        let period = PERIOD.as_micros() as u64;
        assert_eq!(stall_end(5 * period), Some(5 * period + 1_000_000));
        assert_eq!(
            stall_end(5 * period + 999_999),
            Some(5 * period + 1_000_000)
        );
        assert_eq!(stall_end(5 * period + 1_000_000), None);
        assert_eq!(ideal_latency_us(5 * period + 250_000), 750_000);
        assert_eq!(ideal_latency_us(5 * period + 2_000_000), 0);
    }

    #[test]
    fn reference_of_a_tenth_stalled_is_p99_near_900_ms() {
        // 30 s from a period start: 3 stalls, 10% of requests wait up to 1 s, uniformly.
        let period = PERIOD.as_micros() as u64;
        let (p50, p99, p999) = reference_percentiles(7 * period, 1000.0, Duration::from_secs(30));
        assert_eq!(p50, 0);
        assert!((899_000..=901_000).contains(&p99), "p99 {p99}");
        assert!((989_000..=991_000).contains(&p999), "p99.9 {p999}");
    }
}
