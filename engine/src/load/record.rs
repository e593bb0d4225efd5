//! The plain record a worker sends for each request, and the latency it is charged.
//!
//! Records are facts (moments and an outcome); the one policy here is
//! [`RequestRecord::latency`], so every consumer charges failures the same way.

use std::time::{Duration, Instant};

/// One request, as it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRecord {
    /// Index into [`LoadPlan::mix`](super::LoadPlan::mix).
    pub template: usize,
    /// When the schedule wanted it sent. Latency is measured from here, so a late send
    /// (the generator or the runtime fell behind) is charged, not hidden.
    pub intended_at: Instant,
    /// When it was actually handed to the client (or dropped).
    pub sent_at: Instant,
    /// When the response body was fully read, or the request failed.
    pub done_at: Instant,
    /// `sent_at + timeout`: when the client gives up.
    pub deadline: Instant,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with this status (any status, including 4xx/5xx).
    Status(u16),
    /// No answer.
    Error(ErrorKind),
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// No complete response before the deadline.
    Timeout,
    /// The connection could not be made (refused, reset while connecting).
    Connect,
    /// The connection broke during the request or response.
    Io,
    /// Over `max_in_flight`: counted, not sent.
    Dropped,
}

impl ErrorKind {
    /// The name used in summaries: `timeout`, `connect`, `io`, `dropped`.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Io => "io",
            ErrorKind::Dropped => "dropped",
        }
    }
}

impl RequestRecord {
    /// An arrival over `max_in_flight`, not sent. It is charged as if it had waited for
    /// `timeout`: the user it stands for got no answer.
    pub fn dropped(template: usize, intended_at: Instant, timeout: Duration) -> Self {
        let now = Instant::now();
        let outcome = Outcome::Error(ErrorKind::Dropped);
        Self {
            template,
            intended_at,
            sent_at: now,
            done_at: now,
            deadline: now + timeout,
            outcome,
        }
    }

    /// The latency this request counts for in every percentile.
    ///
    /// An answer (whatever its status) counts from `intended_at` to `done_at`. A request
    /// that got no answer counts from `intended_at` to its deadline (or later if it failed
    /// later): a refused connection or a dropped request never answered the user, so it must
    /// not pull the percentiles down by looking fast.
    pub fn latency(&self) -> Duration {
        let end = match self.outcome {
            Outcome::Status(_) => self.done_at,
            Outcome::Error(_) => self.done_at.max(self.deadline),
        };
        end.saturating_duration_since(self.intended_at)
    }

    /// 2xx and 3xx answers. Everything else counts as failed.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Status(code) if code < 400)
    }

    /// The key this request is counted under in [`RunSummary::errors`](super::RunSummary::errors),
    /// or `None` when it succeeded: `"timeout"`, `"connect"`, `"http 503"`, ...
    pub fn error_label(&self) -> Option<String> {
        match self.outcome {
            _ if self.is_ok() => None,
            Outcome::Status(code) => Some(status_label(code)),
            Outcome::Error(kind) => Some(kind.label().to_owned()),
        }
    }
}

/// How an answer with an error status is named among the errors by kind: `http 503`.
pub fn status_label(code: u16) -> String {
    format!("http {code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome, done_ms: u64) -> RequestRecord {
        let t0 = Instant::now();
        RequestRecord {
            template: 0,
            intended_at: t0,
            sent_at: t0 + Duration::from_millis(10),
            done_at: t0 + Duration::from_millis(done_ms),
            deadline: t0 + Duration::from_millis(1010),
            outcome,
        }
    }

    #[test]
    fn an_answer_counts_from_intended_to_done() {
        let r = record(Outcome::Status(503), 30);
        assert_eq!(r.latency(), Duration::from_millis(30));
        assert_eq!(r.error_label().as_deref(), Some("http 503"));
    }

    #[test]
    fn a_fast_failure_counts_until_its_deadline() {
        let r = record(Outcome::Error(ErrorKind::Connect), 11);
        assert_eq!(r.latency(), Duration::from_millis(1010));
        assert_eq!(r.error_label().as_deref(), Some("connect"));
    }
}
