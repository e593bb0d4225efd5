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
//! When neither works (no permission, no controller), [`detect`] returns
//! [`CpuLimiter::Unavailable`] with the reason, which the CLI prints; the lab then tells the
//! service how many threads its CPU work may use ([`FALLBACK_ENV`]) so the lesson still works.
//!
//! Invariant: every cgroup the lab creates is removed when its `InstanceCgroup` drops, and
//! `clean_stale` removes what a killed lab left.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The scheduling period the quota is a share of (the kernel's default, 100 ms).
const PERIOD_US: u64 = 100_000;

/// The weight of the lab's cgroups against other work on the machine, as a multiple of an
/// ordinary process's. Without it, on cgroup v1 all instances together would compete for CPU
/// like one process against every compiler job of a busy machine; with it, they get their
/// quota first (the quota still caps each instance).
const PRIORITY: u64 = 8;

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
    CpuLimiter::Unavailable {
        reason: format!(
            "no CPU quota per instance on this machine ({}); instances are limited by thread count ({FALLBACK_ENV}) instead, which is coarser: numbers will differ from the guide's",
            reasons.join("; ")
        ),
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
    /// Creates `sdlab/<scenario>/<instance>` with a quota of `cores` CPUs (0.5 = half a core).
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the file that could not be created or written.
    pub fn create(
        limiter: &CpuLimiter,
        scenario: &str,
        instance: u32,
        cores: f64,
    ) -> Result<InstanceCgroup, CgroupError> {
        let Some(scenario_dir) = limiter.scenario_dir(scenario) else {
            return Err(CgroupError::Io {
                what: "create",
                path: PathBuf::from("(no cgroup hierarchy)"),
                source: std::io::Error::from(std::io::ErrorKind::Unsupported),
            });
        };
        let dir = scenario_dir.join(format!("instance-{instance}"));
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
            // The fallback is the lesson's answer on such a machine; print why for the log.
            eprintln!("skipping the quota measurement: {reason}");
            assert!(reason.contains(FALLBACK_ENV));
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
}
