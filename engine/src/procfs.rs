//! Reading /proc: fields of a process's `stat` file, a process and its descendants, and the
//! CPU and resident memory a set of processes uses. Below both `process` (liveness, start
//! times) and `metrics` (the per-second CPU and memory of services and PostgreSQL), so
//! neither needs the other for it.

use std::collections::BTreeMap;
use std::time::Instant;

/// Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat; the command name may hold spaces.
pub fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after = stat.rfind(')')?;
    stat[after + 1..].split_whitespace().nth(n.checked_sub(3)?)
}

/// CPU use per set of processes, from the change in their /proc ticks between calls.
#[derive(Default)]
pub struct CpuMeter {
    last: BTreeMap<u32, (u64, Instant)>,
}

impl CpuMeter {
    /// Cores used by `pids` since the last call for them (None on the first call), and their
    /// total resident memory.
    pub fn measure(&mut self, pids: &[u32]) -> (Option<f64>, Option<u64>) {
        let ticks_per_second = clock_ticks();
        let page = page_size();
        let now = Instant::now();
        let (mut cores, mut seen_before, mut rss) = (0.0, false, None::<u64>);
        for &pid in pids {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let field = |n| stat_field(&stat, n).and_then(|v| v.parse::<u64>().ok());
            let ticks = field(14).unwrap_or(0) + field(15).unwrap_or(0);
            if let Some(pages) = field(24) {
                *rss.get_or_insert(0) += pages * page;
            }
            if let Some((prev, at)) = self.last.insert(pid, (ticks, now)) {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    cores += ticks.saturating_sub(prev) as f64 / ticks_per_second / secs;
                    seen_before = true;
                }
            }
        }
        (seen_before.then_some(cores), rss)
    }
}

/// `pid` and all its descendants (PostgreSQL forks a backend per session).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
                if let Some(ppid) = stat_field(&stat, 4).and_then(|p| p.parse().ok()) {
                    parents.entry(ppid).or_default().push(child);
                }
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(children) = parents.get(&out[i]) {
            out.extend(children);
        }
        i += 1;
    }
    out
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stat_fields_survive_spaces_in_the_command_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 4), Some("1"));
        assert_eq!(stat_field(stat, 22), Some("98765"));
    }

    #[test]
    fn cpu_meter_sees_this_process_working() {
        let mut meter = CpuMeter::default();
        let me = std::process::id();
        assert_eq!(meter.measure(&[me]).0, None);
        // Burn 0.2 s of CPU time (not wall time: a busy machine may give us less than a core).
        let ticks = || {
            let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
            let f = |n| stat_field(&stat, n).unwrap().parse::<u64>().unwrap();
            f(14) + f(15)
        };
        let (before, deadline) = (ticks(), Instant::now() + Duration::from_secs(20));
        let mut x = 0u64;
        while ticks() < before + (clock_ticks() as u64) / 5 && Instant::now() < deadline {
            for _ in 0..100_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
        }
        std::hint::black_box(x);
        let (cores, rss) = meter.measure(&[me]);
        let cores = cores.expect("a second measurement has a rate");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            cores > 0.0 && cores <= cpus + 0.5,
            "busy loop measured as {cores} cores"
        );
        assert!(rss.is_some_and(|r| r > 1_000_000));
    }
}
