//! Waiting for an instant to well under a millisecond: the open model's send times.
//!
//! Tokio's timer counts in 1 ms ticks and rounds every deadline up to the next tick, so an
//! arrival due at `t` used to go out between `t` and about `t + 2 ms`, and that lateness was
//! charged to its latency (the lab showed p50 1.5 ms for a 0.1 ms server). [`Precise`] arms a
//! Linux `timerfd` (`CLOCK_MONOTONIC`, the clock `Instant` reads) and waits for it through
//! tokio's reactor: the kernel's high-resolution timer wakes the scheduler tens of microseconds
//! after the instant, never before it, for two system calls per wait (arm, read) and no
//! spinning. Only an instant closer than [`SPIN`] is reached by yielding to the runtime in a
//! loop (other tasks still run): arming a timer for it would cost more than the wait.
//!
//! Where a timerfd cannot be had (a sandbox that forbids it), tokio's sleep is the fallback:
//! as late as before, never early.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Waits shorter than this yield instead of arming the timer.
const SPIN: Duration = Duration::from_micros(50);

/// One scheduler's timer.
pub(crate) struct Precise {
    /// `None`: no timerfd here; tokio's sleep instead.
    fd: Option<AsyncFd<OwnedFd>>,
}

impl Precise {
    /// Must be called inside the runtime (the timerfd is registered with its reactor).
    pub fn new() -> Self {
        Self { fd: timerfd() }
    }

    /// Returns at `at` or a little after, never before.
    pub async fn sleep_until(&mut self, at: Instant) {
        let wait = at.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return;
        }
        if wait < SPIN {
            while Instant::now() < at {
                tokio::task::yield_now().await;
            }
            return;
        }
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(at.into()).await;
        };
        if arm(fd.get_ref(), wait).is_err() || wait_expired(fd).await.is_err() {
            // Not seen in practice; the coarse timer still keeps the schedule.
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        }
    }
}

/// A non-blocking timerfd on `CLOCK_MONOTONIC` registered with the runtime, if the kernel
/// gives one.
fn timerfd() -> Option<AsyncFd<OwnedFd>> {
    // SAFETY: timerfd_create takes no pointers; a non-negative result is a new descriptor
    // that nothing else owns, so `OwnedFd` may take it (and close it on drop).
    let fd = unsafe {
        let raw = libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        );
        if raw < 0 {
            return None;
        }
        OwnedFd::from_raw_fd(raw)
    };
    // SAFETY: the `OwnedFd` is open, owned by the `AsyncFd` for its whole life (closed only
    // when it drops) and always returns the same descriptor.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()
}

/// Sets the timer to expire once, `wait` (above zero) from now. Relative, so it fires after
/// `now + wait` as measured when it is armed, which is after the caller's instant.
fn arm(fd: &OwnedFd, wait: Duration) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: libc::time_t::try_from(wait.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: `spec` is a valid itimerspec for the duration of the call and the old value
    // pointer may be null; re-arming resets the expiration count.
    let result = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits until the armed timer has expired (its count is readable).
async fn wait_expired(fd: &AsyncFd<OwnedFd>) -> io::Result<()> {
    loop {
        let mut guard = fd.readable().await?;
        let read = guard.try_io(|fd| {
            let mut count = [0u8; 8];
            // SAFETY: reads at most 8 bytes into an 8-byte buffer owned by this frame.
            let n = unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
        match read {
            Ok(result) => {
                // The timer fires again only once re-armed, after this: forget the readiness
                // now, or the next wait would start with a read that can only fail.
                guard.clear_ready();
                return result;
            }
            // Readiness left over from an earlier wait: the count was 0; wait for this one.
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The median lateness of `count` waits `gap` apart, for this timer and for tokio's own
    /// sleep, taken in turns (precise, tokio, precise, ...) so that both meet the same
    /// machine: a busy machine's scheduling delay, which both pay, cannot decide the comparison.
    async fn median_lateness(
        timer: &mut Precise,
        gap: Duration,
        count: u32,
    ) -> (Duration, Duration) {
        let start = Instant::now();
        let (mut precise, mut coarse) = (Vec::new(), Vec::new());
        for i in 1..=count {
            let at = start + gap * (2 * i - 1);
            timer.sleep_until(at).await;
            let now = Instant::now();
            assert!(now >= at, "never early");
            precise.push(now - at);
            let at = start + gap * (2 * i);
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            coarse.push(Instant::now().saturating_duration_since(at));
        }
        precise.sort_unstable();
        coarse.sort_unstable();
        (precise[precise.len() / 2], coarse[coarse.len() / 2])
    }

    #[tokio::test]
    async fn a_wait_ends_closer_to_its_instant_than_tokios_sleep() {
        let mut timer = Precise::new();
        assert!(timer.fd.is_some(), "a timerfd on Linux");
        // 2 ms apart, as at 500 requests/s. Tokio's sleep wakes on its 1 ms tick, so it is
        // up to a millisecond late; the timerfd only by the time it takes to be scheduled.
        // (bench/loadgen.sh measures what that buys: the low end's p50.)
        let (precise, coarse) = median_lateness(&mut timer, Duration::from_millis(2), 200).await;
        assert!(
            precise < coarse,
            "median lateness: timerfd {precise:?}, tokio's sleep {coarse:?}"
        );
        // Close instants are yielded to, not armed: never early (asserted in the loop).
        median_lateness(&mut timer, Duration::from_micros(20), 50).await;
    }

    #[tokio::test]
    async fn an_instant_in_the_past_returns_at_once_and_the_fallback_is_never_early() {
        let mut timer = Precise::new();
        let past = Instant::now() - Duration::from_millis(5);
        let started = Instant::now();
        timer.sleep_until(past).await;
        assert!(started.elapsed() < Duration::from_millis(5));
        let mut coarse = Precise { fd: None };
        let at = Instant::now() + Duration::from_millis(3);
        coarse.sleep_until(at).await;
        assert!(Instant::now() >= at);
    }
}
