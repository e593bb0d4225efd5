//! The load generator's figures for Prometheus: whoever runs a load (`sdlab load` in a
//! terminal, the window's Run load) adds each second to a [`LoadTally`] and writes it to
//! `<home>/run/<id>.load.json`; the lab's exporter (`metrics/export.rs`, in the process that
//! owns the lab, often another one) reads it on every scrape. A file, not a channel, because
//! the load and the lab are separate processes on the terminal path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::ErrorKind;
use super::SecondStats;

/// The kinds of failure the exporter always shows (0 when none happened), so a dashboard's
/// error query has a series before the first error: the transport kinds, then answers by class.
pub const ERROR_KINDS: [&str; 6] = [
    "timeout", "connect", "io", "dropped", "http_4xx", "http_5xx",
];

/// A figure older than this is a finished (or killed) run: the exporter shows no load.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// Counters since the run started, and the latest second's latency percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadTally {
    /// Arrivals (offered), including dropped ones.
    pub sent: u64,
    /// 2xx and 3xx answers (achieved).
    pub ok: u64,
    /// Failures by kind (see [`ERROR_KINDS`]).
    pub errors: BTreeMap<String, u64>,
    /// The latest second's percentiles from its corrected histogram (latency counted from the
    /// intended send time), in seconds.
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub in_flight: u64,
    /// When it was last written (Unix milliseconds).
    pub updated_ms: u64,
}

impl LoadTally {
    /// Adds one second of the run.
    pub fn add(&mut self, s: &SecondStats) {
        self.sent += s.sent;
        self.ok += s.ok;
        for (kind, n) in &s.errors {
            *self.errors.entry(kind.label().to_string()).or_default() += n;
        }
        for (status, n) in &s.http_errors {
            let class = if *status >= 500 {
                "http_5xx"
            } else {
                "http_4xx"
            };
            *self.errors.entry(class.to_string()).or_default() += n;
        }
        self.p50 = s.p50.as_secs_f64();
        self.p95 = s.p95.as_secs_f64();
        self.p99 = s.p99.as_secs_f64();
        self.in_flight = s.in_flight;
    }

    /// Writes it (atomically: the exporter may read at any moment).
    pub fn write(&mut self, path: &Path) -> std::io::Result<()> {
        self.updated_ms = now_ms();
        let tmp = path.with_extension("json.tmp");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path)
    }

    /// The tally of a run under way, or None when there is none (no file, or one not written
    /// within [`FRESH_FOR`]).
    pub fn read_fresh(path: &Path) -> Option<LoadTally> {
        let tally: LoadTally = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let age = now_ms().saturating_sub(tally.updated_ms);
        (age <= FRESH_FOR.as_millis() as u64).then_some(tally)
    }

    /// Where a scenario's load is published.
    pub fn path(run_dir: &Path, scenario: &str) -> PathBuf {
        run_dir.join(format!("{scenario}.load.json"))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_add_up_and_a_stale_file_means_no_run() {
        let mut t = LoadTally::default();
        let second = SecondStats {
            second: 0,
            sent: 10,
            ok: 7,
            http_errors: BTreeMap::from([(503, 2)]),
            errors: BTreeMap::from([(ErrorKind::Timeout, 1)]),
            p50: Duration::from_millis(5),
            p95: Duration::from_millis(20),
            p99: Duration::from_millis(40),
            max: Duration::from_millis(50),
            in_flight: 3,
        };
        t.add(&second);
        t.add(&second);
        assert_eq!((t.sent, t.ok), (20, 14));
        assert_eq!(t.errors["http_5xx"], 4);
        assert_eq!(t.errors["timeout"], 2);
        assert_eq!(t.p99, 0.04);
        let dir = tempfile::tempdir().unwrap();
        let path = LoadTally::path(dir.path(), "t1-01");
        t.write(&path).unwrap();
        assert_eq!(LoadTally::read_fresh(&path).unwrap().sent, 20);
        t.updated_ms -= FRESH_FOR.as_millis() as u64 + 1000;
        std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
        assert!(LoadTally::read_fresh(&path).is_none());
    }
}
