//! Finds, identifies, stops and reaps postmaster processes, including ones left by a crashed run.

use crate::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// After this long in fast shutdown (SIGINT), escalate to immediate shutdown (SIGQUIT).
const FAST_GRACE: Duration = Duration::from_secs(10);
/// After this long in immediate shutdown, SIGKILL.
const IMMEDIATE_GRACE: Duration = Duration::from_secs(5);
/// After SIGKILL, give up waiting after this long.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Stops a server left running by a crashed run of the lab on `cluster_dir`.
///
/// Reads `data/postmaster.pid`; when that pid is alive and really is a postgres of this data dir
/// (checked through `/proc/<pid>/cmdline` and `/proc/<pid>/cwd`), asks it to shut down fast,
/// escalating to immediate shutdown and SIGKILL, and waits until it has exited. A pid file whose
/// pid is dead or belongs to another program is removed, so the next start is not refused.
///
/// # Errors
/// [`Error::Stop`] when the process would not exit; [`Error::Io`] when the pid file cannot be removed.
pub fn stop_stale(cluster_dir: &Path) -> Result<Option<u32>, Error> {
    let data_dir = crate::server::data_dir_of(cluster_dir);
    let pid_file = data_dir.join("postmaster.pid");
    // A lab killed while `pg_ctl start` was at work leaves it (and the shell it starts postgres
    // through) to finish: wait for it, so the postmaster is either up with its pid file or gone.
    wait_for_starters(&data_dir, STARTER_GRACE);
    let Some(pid) = read_postmaster_pid(&data_dir) else {
        return stop_unrecorded(&data_dir);
    };
    if is_postmaster_of(pid, &data_dir) {
        tracing::warn!(
            "stopping PostgreSQL pid {pid} left running on {}",
            data_dir.display()
        );
        terminate(pid, &data_dir)?;
        if pid_file.exists() {
            // Killed before it could clean up; postgres would otherwise check the pid again.
            remove_pid_file(&pid_file)?;
        }
        return Ok(Some(pid));
    }
    if pid_file.exists() {
        tracing::info!(
            "removing stale {} (pid {pid} is not a postgres of it)",
            pid_file.display()
        );
        remove_pid_file(&pid_file)?;
    }
    Ok(None)
}

/// How long a `pg_ctl` left by a killed lab may take to finish starting its server.
const STARTER_GRACE: Duration = Duration::from_secs(60);

/// Live processes whose command line names `data_dir` (`pg_ctl -D <dir>`, the `sh -c "exec
/// postgres -D <dir> ..."` it runs, the postmaster), with their program's file name.
fn processes_naming(data_dir: &Path) -> Vec<(u32, String)> {
    let dir = data_dir.to_string_lossy().into_owned();
    let canonical = data_dir
        .canonicalize()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|_| dir.clone());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Some(args) = cmdline_args(pid) else {
            continue;
        };
        if args
            .iter()
            .any(|a| a.contains(&dir) || a.contains(&canonical))
        {
            let program = args
                .first()
                .and_then(|a| a.rsplit('/').next())
                .unwrap_or("")
                .to_string();
            found.push((pid, program));
        }
    }
    found
}

/// The command line of `pid`, one string per argument; None when it cannot be read.
fn cmdline_args(pid: u32) -> Option<Vec<String>> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Waits, at most `grace`, until no `pg_ctl` (or its shell) names `data_dir`.
fn wait_for_starters(data_dir: &Path, grace: Duration) {
    let deadline = Instant::now() + grace;
    // pg_ctl, or the shell it runs `exec postgres` in; nothing else (a `tail -f` of the log
    // names the directory too, and may run for hours).
    let starting = |program: &str| matches!(program, "pg_ctl" | "sh" | "dash" | "bash");
    while Instant::now() < deadline
        && processes_naming(data_dir)
            .iter()
            .any(|(_, program)| starting(program))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a postmaster of `data_dir` that has no pid file (killed mid-start, before it wrote
/// one): found by its command line.
fn stop_unrecorded(data_dir: &Path) -> Result<Option<u32>, Error> {
    let postmaster = processes_naming(data_dir)
        .into_iter()
        .find(|(pid, program)| program.starts_with("postgres") && is_postmaster_of(*pid, data_dir));
    let Some((pid, _)) = postmaster else {
        return Ok(None);
    };
    tracing::warn!(
        "stopping PostgreSQL pid {pid} left starting on {} (no pid file yet)",
        data_dir.display()
    );
    terminate(pid, data_dir)?;
    Ok(Some(pid))
}

fn remove_pid_file(pid_file: &Path) -> Result<(), Error> {
    match std::fs::remove_file(pid_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", pid_file)(e)),
        _ => Ok(()),
    }
}

/// The postmaster pid recorded in `data_dir/postmaster.pid` (its first line), if any.
pub(crate) fn read_postmaster_pid(data_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// True when `pid` is a live (not zombie) process.
pub(crate) fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// True when `pid` is alive and is a postgres serving `data_dir`.
pub(crate) fn is_postmaster_of(pid: u32, data_dir: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Some(args) = cmdline_args(pid) else {
        return false;
    };
    let is_postgres = args.first().is_some_and(|a| {
        a.rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("postgres"))
    });
    if !is_postgres {
        return false;
    }
    let canonical = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    // The postmaster chdirs into its data dir; pg_ctl also passes it as `-D`.
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
    cwd.as_deref() == Some(canonical.as_path())
        || args
            .iter()
            .any(|a| Path::new(a) == data_dir || Path::new(a) == canonical)
}

/// Shuts `pid` down (SIGINT = fast, then SIGQUIT = immediate, then SIGKILL) and waits until it
/// is gone, reaping it when it is our child.
pub(crate) fn terminate(pid: u32, data_dir: &Path) -> Result<(), Error> {
    let started = Instant::now();
    let steps = [
        (libc::SIGINT, FAST_GRACE),
        (libc::SIGQUIT, IMMEDIATE_GRACE),
        (libc::SIGKILL, KILL_GRACE),
    ];
    for (signal, grace) in steps {
        if !is_alive(pid) {
            break;
        }
        send(pid, signal);
        if wait_gone(pid, grace) {
            return Ok(());
        }
        tracing::warn!("PostgreSQL pid {pid} still running after signal {signal}; escalating");
    }
    if wait_gone(pid, Duration::ZERO) {
        return Ok(());
    }
    Err(Error::Stop {
        pid,
        data_dir: PathBuf::from(data_dir),
        message: format!(
            "still alive {:?} after SIGINT, SIGQUIT and SIGKILL",
            started.elapsed()
        ),
    })
}

/// Polls until `pid` has exited (reaping it if it is our child) or `grace` passes.
pub(crate) fn wait_gone(pid: u32, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    loop {
        reap(pid);
        if !is_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Collects the exit status of `pid` if it is an exited child of this process. Never waits on
/// other children: the host (the engine) owns those.
pub(crate) fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let mut status = 0;
    // SAFETY: waitpid on one specific pid with WNOHANG only reads our own child table; a pid that
    // is not our child yields ECHILD, which we ignore.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

fn send(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; the pid was checked to be our postmaster.
    unsafe {
        libc::kill(pid, signal);
    }
}
