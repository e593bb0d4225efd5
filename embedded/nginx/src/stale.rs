//! Finds and stops nginx processes of a prefix: the master named in its pid file, and any
//! process still holding the prefix's log files open (workers whose master was killed keep
//! running and serving; they are found by the files they hold, since their parent is gone).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;

/// How long a master gets to shut down after SIGTERM before it is killed.
pub(crate) const TERM_GRACE: Duration = Duration::from_secs(5);

/// Stops what a crashed run left in `prefix`: the master from `logs/nginx.pid` (SIGTERM, then
/// SIGKILL) and every process holding a file under `prefix/logs` open. Returns their pids.
///
/// # Errors
/// [`Error::Io`] when the stale pid file cannot be removed.
pub fn stop_stale(prefix: &Path) -> Result<Vec<u32>, Error> {
    let mut stopped = Vec::new();
    let pid_file = prefix.join("logs").join("nginx.pid");
    if let Some(pid) = read_pid(&pid_file) {
        if is_nginx_of(pid, prefix) {
            tracing::warn!(
                "stopping nginx pid {pid} left running in {}",
                prefix.display()
            );
            signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + TERM_GRACE;
            while is_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if is_alive(pid) {
                signal(pid, libc::SIGKILL);
            }
            stopped.push(pid);
        }
    }
    for pid in kill_holders(prefix) {
        if !stopped.contains(&pid) {
            stopped.push(pid);
        }
    }
    match std::fs::remove_file(&pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("remove", pid_file)(e))
        }
        _ => {}
    }
    Ok(stopped)
}

/// SIGKILLs every other process with a file under `prefix/logs` open and waits (briefly) until
/// they are gone. Returns their pids.
pub(crate) fn kill_holders(prefix: &Path) -> Vec<u32> {
    let holders = holders(&prefix.join("logs"));
    for pid in &holders {
        tracing::warn!(
            "killing nginx process {pid} still holding {}/logs open",
            prefix.display()
        );
        signal(*pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while holders.iter().any(|p| is_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    holders
}

/// Processes (other than this one) with an open file under `dir`.
fn holders(dir: &Path) -> Vec<u32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || !is_alive(pid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target: PathBuf| target.starts_with(&dir));
        if holds {
            pids.push(pid);
        }
    }
    pids
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True when `pid` is alive and is an nginx started with `-p prefix`.
pub(crate) fn is_nginx_of(pid: u32, prefix: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // nginx rewrites its title: "nginx: master process /usr/sbin/nginx -p <prefix> ...".
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    text.contains("nginx") && text.contains(&prefix.display().to_string())
}

/// True when `pid` is a live (not zombie) process.
pub(crate) fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The children of `pid` (from /proc/<child>/stat's ppid field).
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .is_some_and(|stat| {
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| {
                            rest.split_whitespace().nth(1).map(|p| p == pid.to_string())
                        })
                        .unwrap_or(false)
                        && !stat
                            .rsplit_once(')')
                            .is_some_and(|(_, r)| r.trim_start().starts_with(['Z', 'X']))
                })
        })
        .collect()
}

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub(crate) fn signal(pid: u32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}
