//! When each request of the open model is due: arrival instants from the stages.
//!
//! Open model: the k-th arrival is due when the expected count of arrivals since the start,
//! the integral of the rate, reaches k. Within a ramping stage the rate is linear, so the
//! count is quadratic in time and each arrival time is a closed-form root, computed from the
//! start instant (never by accumulating sleeps, which would drift).
//!
//! Sends are never early, and late by tens of microseconds (`timer.rs`: a timerfd, not
//! tokio's 1 ms timer); whatever lateness there is is charged to the request's latency
//! (measured from `intended_at`). It can make latencies look worse by that much, never better.
//!
//! An arrival carries a slot (a semaphore permit) that the request holds until it is done; an
//! arrival that finds no free slot (`max_in_flight` requests are out) is handed out without
//! one, and the caller records it as dropped. (The closed model has no schedule: see
//! `users.rs`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::plan::{LoadPlan, Stage};
use super::timer::Precise;

/// A request that is due now.
pub(crate) struct Arrival {
    /// When it should be sent (in the past if the generator is behind: send it now anyway).
    pub intended_at: Instant,
    /// `None`: over `max_in_flight`, do not send.
    pub slot: Option<OwnedSemaphorePermit>,
}

/// The source of arrivals for one open-model run.
pub(crate) struct Arrivals {
    start: Instant,
    end: Instant,
    slots: Arc<Semaphore>,
    times: OpenTimes,
    /// The upcoming offset from `start`, peeked so `frontier` can report it.
    next: Option<Duration>,
    timer: Precise,
}

impl Arrivals {
    /// Must be called inside the runtime (see [`Precise::new`]).
    pub fn new(plan: &LoadPlan, start: Instant) -> Self {
        let mut times = OpenTimes::new(&plan.stages);
        let next = times.next();
        Self {
            start,
            end: start + plan.duration(),
            slots: Arc::new(Semaphore::new(plan.max_in_flight)),
            times,
            next,
            timer: Precise::new(),
        }
    }

    /// When the plan ends.
    pub fn end(&self) -> Instant {
        self.end
    }

    /// Waits for the next arrival; `None` once the plan is over. Not cancel-safe: dropping
    /// the future loses the pending arrival, which is fine only when the run is stopping.
    pub async fn next(&mut self) -> Option<Arrival> {
        let offset = self.next.take()?;
        self.next = self.times.next();
        let intended_at = self.start + offset;
        self.timer.sleep_until(intended_at).await;
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok();
        Some(Arrival { intended_at, slot })
    }

    /// No arrival handed out from now on is due before this instant (`None`: no more
    /// arrivals). The aggregator uses it to know when a second is complete.
    pub fn frontier(&self) -> Option<Instant> {
        self.next.map(|offset| self.start + offset)
    }
}

/// Open-model arrival offsets from the start of the run, in order.
pub(crate) struct OpenTimes {
    stages: Vec<StageCurve>,
    stage: usize,
    /// Index of the next arrival over the whole run.
    next: u64,
}

/// A stage as a count curve: `count(t) = r0 t + (r1 - r0) t^2 / (2 T)` arrivals after `t`.
struct StageCurve {
    start: Duration,
    len: f64,
    r0: f64,
    r1: f64,
    /// Expected arrivals before this stage.
    before: f64,
    /// Expected arrivals in this stage.
    count: f64,
}

/// Absorbs float rounding so that 200/s for 2 s gives 400 arrivals, not 401.
const EPSILON: f64 = 1e-9;

impl StageCurve {
    /// Seconds into the stage at which the expected count reaches `k`.
    fn time_of(&self, k: f64) -> f64 {
        if k <= 0.0 {
            return 0.0;
        }
        // Root of a t^2 + b t - k = 0 written as 2k / (b + sqrt(b^2 + 4ak)): stable when
        // a is 0 (constant rate) or negative (ramp down).
        let a = (self.r1 - self.r0) / (2.0 * self.len);
        let b = self.r0;
        let root = (b * b + 4.0 * a * k).max(0.0).sqrt();
        (2.0 * k / (b + root)).clamp(0.0, self.len)
    }
}

impl OpenTimes {
    pub fn new(stages: &[Stage]) -> Self {
        let mut curves = Vec::with_capacity(stages.len());
        let (mut start, mut before) = (Duration::ZERO, 0.0);
        for stage in stages {
            let len = stage.duration.as_secs_f64();
            let (r0, r1) = (stage.start_rate(), stage.rate);
            let count = (r0 + r1) / 2.0 * len;
            curves.push(StageCurve {
                start,
                len,
                r0,
                r1,
                before,
                count,
            });
            start += stage.duration;
            before += count;
        }
        Self {
            stages: curves,
            stage: 0,
            next: 0,
        }
    }
}

impl Iterator for OpenTimes {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        while let Some(curve) = self.stages.get(self.stage) {
            let k = self.next as f64 - curve.before;
            if k < curve.count - EPSILON {
                self.next += 1;
                return Some(curve.start + Duration::from_secs_f64(curve.time_of(k)));
            }
            self.stage += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let times: Vec<_> = OpenTimes::new(&[Stage::constant(secs(2.0), 200.0)]).collect();
        assert_eq!(times.len(), 400);
        assert_eq!(times[0], Duration::ZERO);
        assert!((times[1].as_secs_f64() - 0.005).abs() < 1e-9);
        assert!((times[399].as_secs_f64() - 1.995).abs() < 1e-9);
    }

    #[test]
    fn ramp_counts_follow_the_area_under_the_rate() {
        // 0 -> 100/s over 2 s: 100 arrivals, 25 in the first second.
        let times: Vec<_> = OpenTimes::new(&[Stage::ramp(secs(2.0), 0.0, 100.0)]).collect();
        assert_eq!(times.len(), 100);
        let first_second = times.iter().filter(|t| t.as_secs_f64() < 1.0).count();
        assert_eq!(first_second, 25);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn ramp_down_reaches_the_end_of_the_stage() {
        let times: Vec<_> = OpenTimes::new(&[Stage::ramp(secs(1.0), 100.0, 0.0)]).collect();
        assert_eq!(times.len(), 50);
        assert!(times.iter().all(|t| *t < secs(1.0)));
    }

    #[test]
    fn stages_follow_each_other() {
        let stages = [
            Stage::constant(secs(1.0), 10.0),
            Stage::constant(secs(1.0), 0.0),
            Stage::constant(secs(1.0), 4.0),
        ];
        let times: Vec<_> = OpenTimes::new(&stages).collect();
        assert_eq!(times.len(), 14);
        assert_eq!(times[10], secs(2.0));
        assert_eq!(times[13], secs(2.75));
    }
}
