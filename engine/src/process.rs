//! Child processes the lab runs (scenario services, cargo) and the run-state file that lets
//! the next start find and stop what a crashed run left behind.
//!
//! Invariant: every child is started with `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the
//! lab even when the lab is killed with SIGKILL, and is owned by a guard that stops it on drop.
//!
//! A service's address space is capped (`RLIMIT_AS`, [`memory_limit_mib`]): code that eats
//! memory fails its allocation and aborts instead of taking the learner's machine down, and
//! its exit is described as running out of the lab's limit ([`ServiceProcess::exit_status`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::procfs::stat_field;

/// Lines of log kept in memory per service, for error messages and the UI.
const LOG_TAIL_LINES: usize = 400;

/// The default address-space limit of a service: far above what a scenario service uses
/// (t1-01 under load: 8 MB resident, 208 MB peak address space on 2 cores; malloc arenas of
/// 64 MiB each grow with the cores), low enough that a leak is stopped before it takes a
/// learner's machine.
const DEFAULT_MEMORY_MIB: u64 = 8192;

/// Each service's address-space limit in MiB: `SDLAB_SERVICE_MEMORY_MB` when set to a number,
/// else 8192.
pub fn memory_limit_mib() -> u64 {
    std::env::var("SDLAB_SERVICE_MEMORY_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&mib| mib > 0)
        .unwrap_or(DEFAULT_MEMORY_MIB)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub binary: PathBuf,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub port: u16,
    pub instance: u32,
    pub log_path: PathBuf,
}

/// A running scenario service. Dropping it kills the process.
#[derive(Debug)]
pub struct ServiceProcess {
    child: tokio::process::Child,
    pub pid: u32,
    pub port: u16,
    pub instance: u32,
    pub binary: PathBuf,
    pub log_path: PathBuf,
    tail: Arc<Mutex<VecDeque<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the service (instance {instance}) exited during start-up ({status}). Its last log lines:\n{logs}")]
    Exited {
        instance: u32,
        status: String,
        logs: String,
    },
    #[error("the service (instance {instance}) did not answer GET /healthz on port {port} within {waited:?} (last error: {last_error}){}. Its last log lines:\n{logs}", not_listening_hint(last_error, *port))]
    NotReady {
        instance: u32,
        port: u16,
        waited: Duration,
        last_error: String,
        logs: String,
    },
}

impl ServiceProcess {
    /// Starts the service; it is not ready until `wait_ready` returns.
    pub fn spawn(spec: ServiceSpec) -> Result<ServiceProcess, ProcessError> {
        if let Some(dir) = spec.log_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut command = tokio::process::Command::new(&spec.binary);
        command
            .current_dir(&spec.cwd)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        limit_memory(&mut command, memory_limit_mib());
        let mut child = command.spawn().map_err(|source| ProcessError::Spawn {
            binary: spec.binary.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let log = LogSink::open(&spec.log_path, tail.clone());
        if let Some(out) = child.stdout.take() {
            tokio::spawn(log.clone().pump(out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(log.pump(err));
        }
        Ok(ServiceProcess {
            child,
            pid,
            port: spec.port,
            instance: spec.instance,
            binary: spec.binary,
            log_path: spec.log_path,
            tail,
        })
    }

    /// Polls `GET /healthz` until it answers 200, the process exits, or `timeout` passes.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), ProcessError> {
        let started = Instant::now();
        let mut last_error: String;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the log pumps a moment to drain what the process printed last.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let logs = self.logs(60);
                return Err(ProcessError::Exited {
                    instance: self.instance,
                    status: describe_exit(&status, &logs),
                    logs,
                });
            }
            match crate::metrics::http_get(self.port, "/healthz", Duration::from_secs(1)).await {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last_error = format!("HTTP {status}: {}", body.trim()),
                Err(e) => last_error = e.to_string(),
            }
            if started.elapsed() > timeout {
                return Err(ProcessError::NotReady {
                    instance: self.instance,
                    port: self.port,
                    waited: timeout,
                    last_error,
                    logs: self.logs(60),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `n` log lines.
    pub fn logs(&self, n: usize) -> String {
        let tail = self.tail.lock().map(|t| t.clone()).unwrap_or_default();
        let skip = tail.len().saturating_sub(n);
        tail.into_iter().skip(skip).collect::<Vec<_>>().join("\n")
    }

    /// Whether the process has exited (and how; an abort after a failed allocation is named
    /// as running out of the lab's memory limit).
    pub fn exit_status(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok().flatten()?;
        Some(describe_exit(&status, &self.logs(20)))
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        signal(self.pid, libc::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Asks the kernel to SIGKILL the child when the lab dies, however it dies.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, kill).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() as u32 != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
}

/// Caps the child's address space at `mib` MiB (RLIMIT_AS), set between fork and exec.
fn limit_memory(command: &mut tokio::process::Command, mib: u64) {
    let bytes = mib.saturating_mul(1024 * 1024) as libc::rlim_t;
    // SAFETY: setrlimit(2) is async-signal-safe and touches only the child's own limits.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// How a service ended, in the learner's terms: Rust's "memory allocation of N bytes failed"
/// before an abort means the service hit the lab's memory limit.
fn describe_exit(status: &std::process::ExitStatus, logs: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let out_of_memory =
        status.signal() == Some(libc::SIGABRT) && logs.contains("memory allocation of");
    if out_of_memory {
        format!(
            "{status}: out of memory, the lab limits each service to {} MiB of address space \
             (SDLAB_SERVICE_MEMORY_MB); look for what grows without bound",
            memory_limit_mib()
        )
    } else {
        status.to_string()
    }
}

/// When nothing listens where the service was told to, say that the port comes from `$PORT`.
fn not_listening_hint(last_error: &str, port: u16) -> String {
    if last_error.contains("refused") {
        format!("; nothing listens on 127.0.0.1:{port}: the service must listen on the port given in $PORT")
    } else {
        String::new()
    }
}

/// Sends `sig` to `pid` (ignoring a process that is already gone).
pub fn signal(pid: u32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

/// Whether a process with this pid exists (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_field(&stat, 3).is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// The process's start time in clock ticks since boot: with the pid it names one process,
/// even after the pid is reused.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_field(&stat, 22)?.parse().ok()
}

/// Writes service output to the log file and keeps a tail in memory.
#[derive(Clone)]
struct LogSink {
    file: Option<Arc<tokio::sync::Mutex<tokio::fs::File>>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl LogSink {
    fn open(path: &Path, tail: Arc<Mutex<VecDeque<String>>>) -> LogSink {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(|f| Arc::new(tokio::sync::Mutex::new(tokio::fs::File::from_std(f))));
        LogSink { file, tail }
    }

    async fn pump(self, stream: impl tokio::io::AsyncRead + Unpin) {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(file) = &self.file {
                let mut f = file.lock().await;
                let _ = f.write_all(line.as_bytes()).await;
                let _ = f.write_all(b"\n").await;
            }
            if let Ok(mut tail) = self.tail.lock() {
                if tail.len() == LOG_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    }
}

/// What a lab process records while it owns servers, so `stop` can reach it and the next
/// start can clean up after it if it crashed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub scenario: String,
    pub owner_pid: u32,
    pub owner_start_time: Option<u64>,
    pub postgres_url: Option<String>,
    pub postmaster_pid: Option<u32>,
    /// The streaming replica's superuser URL (its `postgres` database) and postmaster, when
    /// the scenario has one: a second lab process uses it, `sdlab replica` changes its delay.
    #[serde(default)]
    pub replica_url: Option<String>,
    #[serde(default)]
    pub replica_pid: Option<u32>,
    pub services: Vec<ServiceState>,
    /// The background workers (`[topology.workers]`), stopped with the services.
    #[serde(default)]
    pub workers: Vec<ServiceState>,
    /// The load balancer's URL when the topology has nginx: where load goes.
    #[serde(default)]
    pub nginx_url: Option<String>,
    /// The scenario's Redis (`redis://127.0.0.1:PORT`), for `sdlab redis` and the console.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// The lab's Prometheus exporter (`metrics::export`) on 127.0.0.1, once its owner started
    /// one: `sdlab prometheus <id>` prints it.
    #[serde(default)]
    pub metrics_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceState {
    pub pid: u32,
    pub start_time: Option<u64>,
    pub port: u16,
    pub instance: u32,
}

impl ServiceState {
    /// What the run state records of a running service or worker.
    pub fn of(s: &ServiceProcess) -> ServiceState {
        ServiceState {
            pid: s.pid,
            start_time: start_time(s.pid),
            port: s.port,
            instance: s.instance,
        }
    }
}

impl RunState {
    pub fn path(run_dir: &Path, scenario: &str) -> PathBuf {
        run_dir.join(format!("{scenario}.json"))
    }

    pub fn read(path: &Path) -> Option<RunState> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, path)
    }

    /// Whether the process that wrote this state is still running.
    pub fn owner_alive(&self) -> bool {
        alive(self.owner_pid) && start_time(self.owner_pid) == self.owner_start_time
    }

    /// Kills the services and workers this state lists that are still running (same pid and
    /// start time).
    pub fn kill_services(&self) -> Vec<u32> {
        let mut killed = Vec::new();
        for s in self.services.iter().chain(&self.workers) {
            if alive(s.pid) && start_time(s.pid) == s.start_time {
                signal(s.pid, libc::SIGKILL);
                killed.push(s.pid);
            }
        }
        killed
    }
}

/// The port of a lab server's URL, `<scheme>://127.0.0.1:PORT[/...]` (`http` for services
/// and nginx, `redis` for Redis): the one parser of the lab's own URLs.
pub fn local_port(url: &str, scheme: &str) -> Option<u16> {
    let rest = url.strip_prefix(scheme)?.strip_prefix("://")?;
    let authority = rest.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

/// A free TCP port on 127.0.0.1, chosen by the kernel.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_url_gives_its_port_for_its_scheme_only() {
        assert_eq!(local_port("http://127.0.0.1:8080", "http"), Some(8080));
        assert_eq!(
            local_port("http://127.0.0.1:8080/prefix", "http"),
            Some(8080)
        );
        assert_eq!(local_port("redis://127.0.0.1:6390", "redis"), Some(6390));
        assert_eq!(local_port("http://127.0.0.1:6390", "redis"), None);
        assert_eq!(local_port("http://127.0.0.1", "http"), None);
    }

    #[test]
    fn this_process_is_alive_and_has_a_start_time() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(start_time(me).is_some());
        assert!(!alive(u32::MAX / 2));
    }
}
