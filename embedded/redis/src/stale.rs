//! Finds and stops a redis-server a crashed run left in a dir: the one named in its pid file,
//! and any other redis-server working in that dir (one started before the pid file was
//! written, or a save child), each verified in /proc before it is signalled.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;

/// How long Redis gets to shut down after SIGTERM before it is killed.
pub(crate) const TERM_GRACE: Duration = Duration::from_secs(5);

/// The pid file the lab writes beside the config (Redis writes none when not daemonized).
pub(crate) const PID_FILE: &str = "redis.pid";

/// Stops what a crashed run left in `dir`: the redis-server from `redis.pid` and any other
/// redis-server whose working directory is `dir` (SIGTERM, then SIGKILL). A pid file naming a
/// process that is not that Redis (the pid was reused) is ignored. Returns the pids stopped.
///
/// # Errors
/// [`Error::Io`] when the stale pid file cannot be removed.
pub fn stop_stale(dir: &Path) -> Result<Vec<u32>, Error> {
    let mut stale = Vec::new();
    let pid_file = dir.join(PID_FILE);
    if let Some(pid) = read_pid(&pid_file) {
        if is_redis_of(pid, dir) {
            stale.push(pid);
        }
    }
    for pid in redis_in(dir) {
        if !stale.contains(&pid) {
            stale.push(pid);
        }
    }
    for pid in &stale {
        tracing::warn!(
            "stopping redis-server pid {pid} left running in {}",
            dir.display()
        );
        signal(*pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + TERM_GRACE;
    while stale.iter().any(|p| is_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in &stale {
        if is_alive(*pid) {
            signal(*pid, libc::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while stale.iter().any(|p| is_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    match std::fs::remove_file(&pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("remove", pid_file)(e))
        }
        _ => {}
    }
    Ok(stale)
}

/// Live redis-server processes (other than this one) working in `dir`.
fn redis_in(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| *pid != me && is_redis_of(*pid, dir))
        .collect()
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True when `pid` is alive, is a redis-server, and belongs to `dir`: its command line names
/// the config in `dir` or its working directory is `dir` (Redis changes to its `dir` and
/// rewrites its title to `redis-server 127.0.0.1:<port>`, dropping the config path).
pub(crate) fn is_redis_of(pid: u32, dir: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !text.contains("redis-server") {
        return false;
    }
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let names_conf = [dir, canonical.as_path()]
        .iter()
        .any(|d| text.contains(&d.join("redis.conf").display().to_string()));
    let cwd: Option<PathBuf> = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    names_conf || cwd.as_deref() == Some(canonical.as_path())
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

/// Sends `sig` to `pid`, ignoring a process that is already gone.
pub(crate) fn signal(pid: u32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}
