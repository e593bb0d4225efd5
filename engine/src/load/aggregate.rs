//! Turns request records into per-second stats (while the run goes) and the run summary.
//!
//! Records are grouped by the second of their *intended* time, so a stall shows in the
//! second the requests were due, not in the second they finally finished. A second is
//! emitted once it is complete: the scheduler has moved past it ([`Progress`]'s frontier) and
//! none of its requests is still in flight. That lags behind the wall clock by the slowest
//! request of the second, at most about the timeout, and emits each second exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::record::{ErrorKind, Outcome, RequestRecord};

/// The highest latency a histogram holds (one hour, in microseconds); larger values saturate.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// How often the consumer looks for completed seconds.
const TICK: Duration = Duration::from_millis(100);

/// Stats of the requests intended in one second of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondStats {
    /// Seconds since the start of the run: second 0 covers `[0 s, 1 s)`.
    pub second: u32,
    /// Arrivals, including dropped ones, and the resends of templates that retry.
    pub sent: u64,
    /// 2xx and 3xx answers.
    pub ok: u64,
    /// 4xx and 5xx answers by status.
    pub http_errors: BTreeMap<u16, u64>,
    /// Requests without an answer, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Requests (of any second) still in flight at the end of this second.
    pub in_flight: u64,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The plan's duration, or until cancellation.
    pub duration: Duration,
    /// Arrivals, including dropped ones, and the resends of templates that retry.
    pub sent: u64,
    pub ok: u64,
    /// 4xx/5xx answers, timeouts, transport errors and dropped arrivals.
    pub failed: u64,
    /// `failed / sent` (0 when nothing was sent).
    pub error_rate: f64,
    /// Successful requests per second.
    pub achieved_rate: f64,
    /// Arrivals per second.
    pub offered_rate: f64,
    pub latency: LatencySummary,
    /// In the order of the plan's mix, then `<name> (retry)` for each template that retries.
    pub per_template: Vec<(String, TemplateSummary)>,
    /// Failures by label: `"timeout"`, `"connect"`, `"io"`, `"dropped"`, `"http 503"`, ...
    pub errors: BTreeMap<String, u64>,
    /// Every request's latency (see [`RequestRecord::latency`]), in microseconds.
    pub histogram: Histogram<u64>,
}

/// Latency over all requests, failed ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySummary {
    pub p50: Duration,
    pub p90: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub mean: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TemplateSummary {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    /// Answers 429 Too Many Requests (a rate limiter's refusals), among `failed`.
    pub too_many: u64,
    pub latency: LatencySummary,
}

impl LatencySummary {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            p50: quantile(h, 0.50),
            p90: quantile(h, 0.90),
            p95: quantile(h, 0.95),
            p99: quantile(h, 0.99),
            p999: quantile(h, 0.999),
            max: micros(h.max()),
            mean: Duration::from_secs_f64(h.mean() / 1e6),
        }
    }
}

/// What the scheduler tells the consumer so it can tell when a second is complete.
pub(crate) struct Progress {
    start: Instant,
    state: Mutex<ProgressState>,
}

struct ProgressState {
    /// No arrival dispatched from now on is intended before this; `None`: no more arrivals.
    frontier: Option<Instant>,
    /// Requests sent and not yet recorded, by intended second.
    in_flight: BTreeMap<u32, u64>,
}

impl Progress {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            state: Mutex::new(ProgressState {
                frontier: Some(start),
                in_flight: BTreeMap::new(),
            }),
        }
    }

    /// The second of the run an instant falls in.
    pub fn second_of(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.start).as_secs()).unwrap_or(u32::MAX)
    }

    pub fn started(&self, second: u32) {
        *self.lock().in_flight.entry(second).or_default() += 1;
    }

    /// The closed model's `started`: a request due now, before `end`. Reads the clock under
    /// the lock and moves the frontier to it, so a second is never judged complete between a
    /// user reading the clock and counting its request. `None` at or after `end`.
    pub fn start_now(&self, end: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let now = Instant::now();
        if now >= end {
            return None;
        }
        state.frontier = Some(now);
        *state.in_flight.entry(self.second_of(now)).or_default() += 1;
        Some(now)
    }

    /// Call after the request's record was sent to the consumer.
    pub fn finished(&self, second: u32) {
        let mut state = self.lock();
        if let Some(count) = state.in_flight.get_mut(&second) {
            *count -= 1;
            if *count == 0 {
                state.in_flight.remove(&second);
            }
        }
    }

    pub fn advance(&self, frontier: Option<Instant>) {
        self.lock().frontier = frontier;
    }

    /// Every second before the returned one is complete.
    fn complete_before(&self) -> u32 {
        let state = self.lock();
        let scheduled = state.frontier.map_or(u32::MAX, |at| self.second_of(at));
        let pending = state.in_flight.keys().next().copied().unwrap_or(u32::MAX);
        scheduled.min(pending)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        // The state stays consistent even if a holder panicked: each update is one step.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Consumes records: per-second stats, per-template and whole-run totals.
pub(crate) struct Aggregator {
    start: Instant,
    /// Seconds in the plan; the last ones are emitted when the run ends.
    planned_seconds: u32,
    empty: Histogram<u64>,
    ticks: Option<UnboundedSender<SecondStats>>,
    /// Not yet emitted, by second.
    seconds: BTreeMap<u32, SecondAcc>,
    next_second: u32,
    templates: Vec<(String, TemplateAcc)>,
    run: Histogram<u64>,
    sent: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

struct SecondAcc {
    sent: u64,
    ok: u64,
    http_errors: BTreeMap<u16, u64>,
    errors: BTreeMap<ErrorKind, u64>,
    in_flight: u64,
    latency: Histogram<u64>,
}

struct TemplateAcc {
    sent: u64,
    ok: u64,
    too_many: u64,
    latency: Histogram<u64>,
}

impl Aggregator {
    /// `empty` is the histogram every other one is copied from.
    pub fn new(
        start: Instant,
        plan_duration: Duration,
        template_names: Vec<String>,
        empty: Histogram<u64>,
        ticks: Option<UnboundedSender<SecondStats>>,
    ) -> Self {
        let planned_seconds =
            u32::try_from(plan_duration.as_secs_f64().ceil() as u64).unwrap_or(u32::MAX);
        let templates = template_names
            .into_iter()
            .map(|name| {
                (
                    name,
                    TemplateAcc {
                        sent: 0,
                        ok: 0,
                        too_many: 0,
                        latency: Histogram::new_from(&empty),
                    },
                )
            })
            .collect();
        Self {
            start,
            planned_seconds,
            run: Histogram::new_from(&empty),
            empty,
            ticks,
            seconds: BTreeMap::new(),
            next_second: 0,
            templates,
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Consumes records until `finished` fires and every sender is gone, emitting seconds as
    /// they complete.
    ///
    /// Records are taken in batches on each tick rather than one by one as they arrive: a
    /// request then costs its sender one queue push, never a wake-up of this task.
    pub async fn consume(
        mut self,
        mut records: UnboundedReceiver<RequestRecord>,
        progress: Arc<Progress>,
        finished: CancellationToken,
    ) -> Self {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = finished.cancelled() => break,
                _ = tick.tick() => {
                    // Read progress first, then drain: a request's record is queued before it
                    // is marked finished, so every record of a complete second is queued now.
                    let complete = progress.complete_before().min(progress.second_of(Instant::now()));
                    while let Ok(record) = records.try_recv() {
                        self.add(&record);
                    }
                    self.emit_before(complete.min(self.planned_seconds));
                }
            }
        }
        while let Some(record) = records.recv().await {
            self.add(&record);
        }
        self
    }

    pub fn add(&mut self, record: &RequestRecord) {
        let latency_us = u64::try_from(record.latency().as_micros()).unwrap_or(u64::MAX);
        let ok = record.is_ok();
        let second = self.second_of(record.intended_at);
        let acc = self.second(second);
        acc.sent += 1;
        acc.latency.saturating_record(latency_us);
        match record.outcome {
            _ if ok => acc.ok += 1,
            Outcome::Status(code) => *acc.http_errors.entry(code).or_default() += 1,
            Outcome::Error(kind) => *acc.errors.entry(kind).or_default() += 1,
        }
        // In flight at the end of each second boundary it spans.
        if record.outcome != Outcome::Error(ErrorKind::Dropped) {
            let first_end = self.second_of(record.sent_at).saturating_add(1);
            let last_end = self.second_of(record.done_at).min(self.planned_seconds);
            for end in first_end..=last_end {
                if end > self.next_second {
                    self.second(end - 1).in_flight += 1;
                }
            }
        }

        self.sent += 1;
        self.run.saturating_record(latency_us);
        if ok {
            self.ok += 1;
        }
        if let Some(label) = record.error_label() {
            *self.errors.entry(label).or_default() += 1;
        }
        if let Some((_, template)) = self.templates.get_mut(record.template) {
            template.sent += 1;
            template.ok += u64::from(ok);
            template.too_many += u64::from(record.outcome == Outcome::Status(429));
            template.latency.saturating_record(latency_us);
        }
    }

    /// Emits the remaining seconds and summarises the run.
    pub fn finish(mut self, duration: Duration) -> RunSummary {
        let run_seconds = u32::try_from(duration.as_secs_f64().ceil() as u64).unwrap_or(u32::MAX);
        let last = self.seconds.keys().next_back().map_or(0, |s| s + 1);
        self.emit_before(run_seconds.max(last).min(self.planned_seconds));

        let failed = self.sent - self.ok;
        let secs = duration.as_secs_f64();
        let per_second = |count: u64| if secs > 0.0 { count as f64 / secs } else { 0.0 };
        let h = &self.run;
        RunSummary {
            duration,
            sent: self.sent,
            ok: self.ok,
            failed,
            error_rate: if self.sent > 0 {
                failed as f64 / self.sent as f64
            } else {
                0.0
            },
            achieved_rate: per_second(self.ok),
            offered_rate: per_second(self.sent),
            latency: LatencySummary::of(h),
            per_template: self
                .templates
                .into_iter()
                .map(|(name, t)| {
                    let summary = TemplateSummary {
                        sent: t.sent,
                        ok: t.ok,
                        failed: t.sent - t.ok,
                        too_many: t.too_many,
                        latency: LatencySummary::of(&t.latency),
                    };
                    (name, summary)
                })
                .collect(),
            errors: self.errors,
            histogram: self.run,
        }
    }

    fn second_of(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.start).as_secs()).unwrap_or(u32::MAX)
    }

    fn second(&mut self, second: u32) -> &mut SecondAcc {
        let empty = &self.empty;
        self.seconds.entry(second).or_insert_with(|| SecondAcc {
            sent: 0,
            ok: 0,
            http_errors: BTreeMap::new(),
            errors: BTreeMap::new(),
            in_flight: 0,
            latency: Histogram::new_from(empty),
        })
    }

    /// Emits every second before `end` not emitted yet, empty ones included.
    fn emit_before(&mut self, end: u32) {
        while self.next_second < end {
            let second = self.next_second;
            self.next_second += 1;
            let acc = self.seconds.remove(&second);
            let Some(ticks) = &self.ticks else { continue };
            let stats = match acc {
                Some(acc) => SecondStats {
                    second,
                    sent: acc.sent,
                    ok: acc.ok,
                    http_errors: acc.http_errors,
                    errors: acc.errors,
                    p50: quantile(&acc.latency, 0.50),
                    p95: quantile(&acc.latency, 0.95),
                    p99: quantile(&acc.latency, 0.99),
                    max: micros(acc.latency.max()),
                    in_flight: acc.in_flight,
                },
                None => SecondStats {
                    second,
                    sent: 0,
                    ok: 0,
                    http_errors: BTreeMap::new(),
                    errors: BTreeMap::new(),
                    p50: Duration::ZERO,
                    p95: Duration::ZERO,
                    p99: Duration::ZERO,
                    max: Duration::ZERO,
                    in_flight: 0,
                },
            };
            // The listener may have gone away (UI closed); the run goes on regardless.
            let _ = ticks.send(stats);
        }
    }
}

fn quantile(histogram: &Histogram<u64>, q: f64) -> Duration {
    micros(histogram.value_at_quantile(q))
}

fn micros(us: u64) -> Duration {
    Duration::from_micros(us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn record(start: Instant, intended_ms: u64, done_ms: u64, outcome: Outcome) -> RequestRecord {
        let at = |ms| start + Duration::from_millis(ms);
        RequestRecord {
            template: 0,
            intended_at: at(intended_ms),
            sent_at: at(intended_ms),
            done_at: at(done_ms),
            deadline: at(intended_ms + 5000),
            outcome,
        }
    }

    #[test]
    fn seconds_and_summary_count_every_outcome() {
        let start = Instant::now();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let empty = Histogram::new_with_max(MAX_LATENCY_US, 3).unwrap();
        let mut agg = Aggregator::new(
            start,
            Duration::from_secs(2),
            vec!["a".into()],
            empty,
            Some(tx),
        );
        agg.add(&record(start, 100, 110, Outcome::Status(200)));
        agg.add(&record(start, 200, 2500, Outcome::Status(503)));
        agg.add(&record(
            start,
            1100,
            1120,
            Outcome::Error(ErrorKind::Timeout),
        ));
        let summary = agg.finish(Duration::from_secs(2));

        let first = rx.try_recv().unwrap();
        assert_eq!((first.second, first.sent, first.ok), (0, 2, 1));
        assert_eq!(first.http_errors, BTreeMap::from([(503, 1)]));
        assert_eq!(first.in_flight, 1);
        let second = rx.try_recv().unwrap();
        assert_eq!(second.errors, BTreeMap::from([(ErrorKind::Timeout, 1)]));
        assert_eq!(second.in_flight, 1, "the 503 was still in flight at 2 s");
        assert!(
            second.p50 >= Duration::from_secs(4),
            "a timeout counts until its deadline"
        );
        assert!(rx.try_recv().is_err());

        assert_eq!((summary.sent, summary.ok, summary.failed), (3, 1, 2));
        assert_eq!(
            summary.errors,
            BTreeMap::from([("http 503".into(), 1), ("timeout".into(), 1)])
        );
        assert_eq!(summary.per_template[0].1.sent, 3);
        assert!((summary.offered_rate - 1.5).abs() < 1e-9);
    }

    #[test]
    fn a_second_is_incomplete_while_its_requests_are_in_flight() {
        let start = Instant::now();
        let progress = Progress::new(start);
        progress.advance(Some(start + Duration::from_millis(2500)));
        progress.started(1);
        assert_eq!(progress.complete_before(), 1);
        progress.finished(1);
        assert_eq!(progress.complete_before(), 2);
    }
}
