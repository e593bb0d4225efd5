//! A fixed CPU share per service instance, as a container's `--cpus` gives: each instance
//! runs in its own cgroup with a CPU quota, so one instance cannot use the whole machine while
//! the load generator, nginx and PostgreSQL stay outside every instance's budget.
//!
//! Two mechanisms, tried in order:
//! - cgroup v2: `cpu.max` in `<unified>/sdlab/<scenario>/<instance>`, when the unified hierarchy
//!   offers the `cpu` controller and the lab may write there;
//! - cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` in
//!   `/sys/fs/cgroup/cpu/sdlab/<scenario>/<instance>`.
//!
//! When neither works (no permission, no controller, or `SDLAB_NO_CGROUP=1`), [`detect`]
//! returns [`CpuLimiter::Unavailable`] with the reason, which the CLI prints. The lab then
//! enforces the share itself, as `cpulimit` does: a [`Throttle`] pauses the instance
//! (SIGSTOP) once it has used its share of each period and resumes it (SIGCONT) at the next,
//! and the service is told to run its CPU work on few threads ([`FALLBACK_ENV`]).
//!
//! Invariant: every cgroup the lab creates is removed when its `InstanceCgroup` drops, and
//! `clean_stale` removes what a killed lab left.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The scheduling period the quota is a share of. Shorter than the kernel's default (100 ms,
/// which `docker --cpus` keeps): an instance that spends its share early in a period waits
/// for the next one, so a short period keeps those pauses (and the latency they add) small.
const PERIOD_US: u64 = 20_000;

/// The weight of the lab's cgroups against other work on the machine, as a multiple of an
/// ordinary process's. Without it, on cgroup v1 all instances together would compete for CPU
/// like one process against every compiler job of a busy machine; with it, they get their
/// quota first. The quota still caps each instance, so this reserves at most the instances'
/// shares (4 x 0.3 CPU in t1-04), never the machine: 32 keeps that reservation against a
/// load average of 20 on 2 cores, as measured here during other engineers' builds.
const PRIORITY: u64 = 32;

/// What a service reads, when no cgroup can limit it, for how many threads its CPU-heavy work
/// may use at once (at least 1): a coarser stand-in for a CPU quota.
pub const FALLBACK_ENV: &str = "CPU_THREADS";

/// How this machine can limit an instance's CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuLimiter {
    /// cgroup v2: the unified hierarchy's mount point.
    V2 { root: PathBuf },
    /// cgroup v1: the `cpu` controller's mount point.
    V1 { root: PathBuf },
    /// Neither works; the reason says why and what the lab does instead.
    Unavailable { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { what, path, source }
}

/// Finds a mechanism that works here by trying it: creating and removing a probe cgroup.
pub fn detect() -> CpuLimiter {
    if std::env::var_os("SDLAB_NO_CGROUP").is_some_and(|v| !v.is_empty() && v != "0") {
        return unavailable(vec!["SDLAB_NO_CGROUP is set".to_string()]);
    }
    let mut reasons = Vec::new();
    for root in [
        PathBuf::from("/sys/fs/cgroup"),
        PathBuf::from("/sys/fs/cgroup/unified"),
    ] {
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers"));
        match controllers {
            Ok(c) if c.split_whitespace().any(|w| w == "cpu") => {
                match probe(&CpuLimiter::V2 { root: root.clone() }) {
                    Ok(()) => return CpuLimiter::V2 { root },
                    Err(e) => reasons.push(format!("cgroup v2 at {}: {e}", root.display())),
                }
            }
            Ok(_) => reasons.push(format!(
                "cgroup v2 at {} has no cpu controller",
                root.display()
            )),
            Err(_) => {}
        }
    }
    let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
    if v1.join("cpu.cfs_quota_us").exists() {
        match probe(&CpuLimiter::V1 { root: v1.clone() }) {
            Ok(()) => return CpuLimiter::V1 { root: v1 },
            Err(e) => reasons.push(format!("cgroup v1 at {}: {e}", v1.display())),
        }
    } else {
        reasons.push("no cgroup v1 cpu controller at /sys/fs/cgroup/cpu".to_string());
    }
    unavailable(reasons)
}

fn unavailable(reasons: Vec<String>) -> CpuLimiter {
    CpuLimiter::Unavailable {
        reason: format!(
            "no cgroup CPU quota per instance on this machine ({}); the lab pauses each instance once it has used its share of every {} ms instead (SIGSTOP/SIGCONT, like cpulimit): coarser, so numbers may differ from the guide's",
            reasons.join("; "),
            THROTTLE_PERIOD.as_millis()
        ),
    }
}

/// The accounting period of a [`Throttle`]: long enough for the kernel's tick-based CPU
/// times (10 ms) to measure a share, short enough to keep latency spikes small.
const THROTTLE_PERIOD: Duration = Duration::from_millis(200);

/// A CPU share enforced from outside with signals, where no cgroup can be made. Stops (and
/// resumes the process) when dropped.
#[derive(Debug)]
pub struct Throttle {
    cancel: tokio_util::sync::CancellationToken,
}

impl Throttle {
    /// Holds process `pid` (all its threads) to `cores` CPUs, from a task on the current
    /// tokio runtime.
    pub fn start(pid: u32, cores: f64) -> Throttle {
        let cancel = tokio_util::sync::CancellationToken::new();
        let token = cancel.clone();
        tokio::spawn(async move {
            let budget = THROTTLE_PERIOD.mul_f64(cores);
            // CPU used beyond the budget is paid back in the next periods.
            let mut debt = Duration::ZERO;
            while !token.is_cancelled() {
                let period = tokio::time::Instant::now();
                let Some(used0) = process_cpu(pid) else { break };
                signal(pid, libc::SIGCONT);
                let allowed = budget.saturating_sub(debt);
                loop {
                    let used = process_cpu(pid).map_or(Duration::MAX, |u| u.saturating_sub(used0));
                    if used >= allowed {
                        debt = used - allowed;
                        signal(pid, libc::SIGSTOP);
                        break;
                    }
                    if period.elapsed() >= THROTTLE_PERIOD {
                        debt = Duration::ZERO;
                        break;
                    }
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                    }
                }
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = tokio::time::sleep_until(period + THROTTLE_PERIOD) => {}
                }
            }
            signal(pid, libc::SIGCONT);
        });
        Throttle { cancel }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// utime + stime of every thread of `pid` (from /proc/<pid>/stat), None once it is gone.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first().is_some_and(|s| *s == "Z") {
        return None;
    }
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|h| *h > 0)?;
    Some(Duration::from_micros(ticks * 1_000_000 / hz))
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn probe(limiter: &CpuLimiter) -> Result<(), CgroupError> {
    let group = InstanceCgroup::create(limiter, "_probe", std::process::id(), 0.5)?;
    let scenario_dir = group.dir.parent().map(Path::to_path_buf);
    drop(group);
    if let Some(dir) = scenario_dir {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

impl CpuLimiter {
    /// A one-line description for the CLI and the UI.
    pub fn describe(&self) -> String {
        match self {
            CpuLimiter::V2 { root } => format!("cgroup v2 cpu.max under {}", root.display()),
            CpuLimiter::V1 { root } => {
                format!("cgroup v1 cpu.cfs_quota_us under {}", root.display())
            }
            CpuLimiter::Unavailable { reason } => reason.clone(),
        }
    }

    /// The lab's directory for `scenario` in this hierarchy.
    fn scenario_dir(&self, scenario: &str) -> Option<PathBuf> {
        match self {
            CpuLimiter::V2 { root } | CpuLimiter::V1 { root } => {
                Some(root.join("sdlab").join(scenario))
            }
            CpuLimiter::Unavailable { .. } => None,
        }
    }

    /// Removes the cgroups a killed lab left for `scenario` (their processes are gone by then:
    /// the run state's clean-up stops them first). Returns how many were removed.
    pub fn clean_stale(&self, scenario: &str) -> usize {
        let Some(dir) = self.scenario_dir(scenario) else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            if entry.path().is_dir() && std::fs::remove_dir(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// One instance's cgroup with its CPU quota. Dropping it removes the cgroup (once its
/// processes have exited; the kernel refuses to remove a cgroup with members).
#[derive(Debug)]
pub struct InstanceCgroup {
    dir: PathBuf,
    pub cores: f64,
}

impl InstanceCgroup {
    /// Creates `sdlab/<scenario>/<lab pid>-instance-<instance>` with a quota of `cores` CPUs (0.5 = half a core).
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the file that could not be created or written.
    pub fn create(
        limiter: &CpuLimiter,
        scenario: &str,
        instance: u32,
        cores: f64,
    ) -> Result<InstanceCgroup, CgroupError> {
        Self::create_named(limiter, scenario, &format!("instance-{instance}"), cores)
    }

    /// Creates `sdlab/<scenario>/<lab pid>-<name>` with a quota of `cores` CPUs: an instance's
    /// (`instance-N`) or a PostgreSQL server's (`postgres-primary`, `postgres-replica`).
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the file that could not be created or written.
    pub fn create_named(
        limiter: &CpuLimiter,
        scenario: &str,
        name: &str,
        cores: f64,
    ) -> Result<InstanceCgroup, CgroupError> {
        let Some(scenario_dir) = limiter.scenario_dir(scenario) else {
            return Err(CgroupError::Io {
                what: "create",
                path: PathBuf::from("(no cgroup hierarchy)"),
                source: std::io::Error::from(std::io::ErrorKind::Unsupported),
            });
        };
        // Named after the lab process too: `sdlab check` beside a running `sdlab start` runs
        // its own instances, each with its own quota.
        let dir = scenario_dir.join(format!("{}-{name}", std::process::id()));
        if dir.exists() {
            // Left by a run that died: its processes are gone, so it can be removed.
            let _ = std::fs::remove_dir(&dir);
        }
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let group = InstanceCgroup { dir, cores };
        let quota = ((cores * PERIOD_US as f64).round() as u64).max(1000);
        match limiter {
            CpuLimiter::V2 { root } => {
                // v2 hands a controller down only where each ancestor enables it for its children.
                let mut parent = root.clone();
                for part in ["sdlab", scenario] {
                    write(&parent.join("cgroup.subtree_control"), "+cpu")?;
                    parent = parent.join(part);
                }
                write(&parent.join("cgroup.subtree_control"), "+cpu")?;
                write(&group.dir.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
                // Best effort: weight is a priority, not the limit the lesson depends on.
                for dir in [root.join("sdlab"), scenario_dir.clone()] {
                    let _ = write(&dir.join("cpu.weight"), &(100 * PRIORITY).to_string());
                }
            }
            CpuLimiter::V1 { .. } => {
                write(&group.dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&group.dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                // Best effort: shares are a priority, not the limit the lesson depends on.
                for dir in [
                    scenario_dir.parent().map(Path::to_path_buf),
                    Some(scenario_dir.clone()),
                ]
                .into_iter()
                .flatten()
                {
                    let _ = write(&dir.join("cpu.shares"), &(1024 * PRIORITY).to_string());
                }
            }
            CpuLimiter::Unavailable { .. } => {}
        }
        Ok(group)
    }

    /// Moves process `pid` (all its threads) into the cgroup.
    ///
    /// # Errors
    /// [`CgroupError::Io`] when `cgroup.procs` cannot be written.
    pub fn add(&self, pid: u32) -> Result<(), CgroupError> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many periods the instance was throttled in and for how long (from `cpu.stat`):
    /// the sign that it wanted more CPU than its share.
    pub fn throttled(&self) -> Option<(u64, Duration)> {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        let field = |name: &str| {
            stat.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        };
        let periods = field("nr_throttled ")?;
        // v1 reports nanoseconds, v2 microseconds.
        let time = match field("throttled_usec ") {
            Some(us) => Duration::from_micros(us),
            None => Duration::from_nanos(field("throttled_time ").unwrap_or(0)),
        };
        Some((periods, time))
    }
}

impl Drop for InstanceCgroup {
    fn drop(&mut self) {
        // The instance was stopped before; give the kernel a moment to empty the group.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!("could not remove cgroup {}", self.dir.display());
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// utime + stime of `pid`, from /proc/<pid>/stat.
    fn cpu_time(pid: u32) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = stat.rsplit_once(')').unwrap().1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After ')' the fields start at index 3 (state); utime is field 14, stime 15.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }

    #[test]
    fn a_busy_child_in_an_instance_cgroup_uses_no_more_than_its_quota() {
        let limiter = detect();
        if let CpuLimiter::Unavailable { reason } = &limiter {
            // The throttle is the answer on such a machine (tested below); say why.
            eprintln!("no cgroup to measure here: {reason}");
            assert!(reason.contains("SIGSTOP"));
            return;
        }
        let scenario = format!("test-{}", std::process::id());
        let group = InstanceCgroup::create(&limiter, &scenario, 1, 0.25).unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        group.add(child.id()).unwrap();
        let (cpu0, wall0) = (cpu_time(child.id()), Instant::now());
        std::thread::sleep(Duration::from_millis(2000));
        let (cpu, wall) = (cpu_time(child.id()) - cpu0, wall0.elapsed());
        let throttled = group.throttled();
        child.kill().unwrap();
        child.wait().unwrap();
        let dir = group.dir().to_path_buf();
        drop(group);
        let share = cpu.as_secs_f64() / wall.as_secs_f64();
        // 0.25 of a core: generous margins either side (a busy machine only lowers the share).
        assert!(
            share < 0.4,
            "a 0.25-core quota let a busy loop use {share:.2} of a core"
        );
        assert!(
            share > 0.02,
            "the busy loop barely ran: {share:.2} of a core"
        );
        assert!(
            throttled.is_some_and(|(n, _)| n > 0),
            "cpu.stat shows no throttling: {throttled:?}"
        );
        assert!(!dir.exists(), "the cgroup is removed on drop");
        let _ = std::fs::remove_dir(dir.parent().unwrap());
    }

    #[test]
    fn stale_instance_groups_are_removed() {
        let limiter = detect();
        if matches!(limiter, CpuLimiter::Unavailable { .. }) {
            return;
        }
        let scenario = format!("stale-{}", std::process::id());
        let group = InstanceCgroup::create(&limiter, &scenario, 2, 0.5).unwrap();
        let dir = group.dir().to_path_buf();
        std::mem::forget(group); // a killed lab never drops it
        assert!(dir.exists());
        assert_eq!(limiter.clean_stale(&scenario), 1);
        assert!(!dir.exists());
        let _ = std::fs::remove_dir(dir.parent().unwrap());
    }

    #[tokio::test]
    async fn a_busy_child_under_a_throttle_uses_about_its_share() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let throttle = Throttle::start(pid, 0.25);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (cpu0, wall0) = (cpu_time(pid), Instant::now());
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let share = (cpu_time(pid) - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64();
        drop(throttle);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            share < 0.45,
            "a 0.25-core throttle let a busy loop use {share:.2} of a core"
        );
        assert!(
            share > 0.02,
            "the busy loop barely ran: {share:.2} of a core"
        );
        let after_name = state.rsplit_once(')').unwrap().1.trim_start();
        assert!(
            !after_name.starts_with('T'),
            "a dropped throttle leaves the process running: {state}"
        );
    }

    #[test]
    fn sdlab_no_cgroup_forces_the_fallback_and_says_why() {
        // Only this test sets it, and detect() reads it once per call.
        std::env::set_var("SDLAB_NO_CGROUP", "1");
        let limiter = detect();
        std::env::remove_var("SDLAB_NO_CGROUP");
        let CpuLimiter::Unavailable { reason } = limiter else {
            panic!("expected the fallback")
        };
        assert!(
            reason.contains("SDLAB_NO_CGROUP") && reason.contains("SIGSTOP"),
            "{reason}"
        );
    }
}
