//! Starting, querying and stopping one redis-server: the [`Redis`] guard.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::config::{check_policy, port_taken, redis_conf, ConfSpec, MAX_SOCKET_PATH};
use crate::resp::{encode, parse_info, read_reply, Reply};
use crate::stale::{is_alive, signal, stop_stale, PID_FILE, TERM_GRACE};
use crate::{find_binary, Error};

/// How long Redis may take to answer PING after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one command may take, connection included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How many free ports are tried when another process takes the picked one first.
const PORT_ATTEMPTS: usize = 5;

/// What to run. `RedisOptions::new(dir).maxmemory(4 << 20).policy("allkeys-lru")`.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// The directory Redis owns: config, log, pid file, socket, data. Created if missing.
    pub dir: PathBuf,
    /// The port to listen on; a free one when `None`.
    pub port: Option<u16>,
    /// `maxmemory` in bytes; Redis's default (no limit) when `None`.
    pub maxmemory: Option<u64>,
    /// `maxmemory-policy` (one of [`crate::POLICIES`]); Redis's default (`noeviction`) when `None`.
    pub maxmemory_policy: Option<String>,
    /// Snapshots and an append-only file in `dir`. Off: a cache that starts empty every time.
    pub persistence: bool,
}

impl RedisOptions {
    pub fn new(dir: impl Into<PathBuf>) -> RedisOptions {
        RedisOptions {
            dir: dir.into(),
            ..RedisOptions::default()
        }
    }

    pub fn port(mut self, port: u16) -> RedisOptions {
        self.port = Some(port);
        self
    }

    pub fn maxmemory(mut self, bytes: u64) -> RedisOptions {
        self.maxmemory = Some(bytes);
        self
    }

    pub fn policy(mut self, policy: impl Into<String>) -> RedisOptions {
        self.maxmemory_policy = Some(policy.into());
        self
    }

    pub fn persistence(mut self, on: bool) -> RedisOptions {
        self.persistence = on;
        self
    }
}

/// A running redis-server. Dropping it stops it.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    dir: PathBuf,
    socket: Option<PathBuf>,
    port: u16,
    pid: u32,
    /// Where this start's lines begin in `redis.log` (which a crashed run's lines precede).
    log_start: u64,
}

impl Redis {
    /// Stops a stale Redis of the dir, writes the config, starts redis-server in the
    /// foreground and waits until it answers PING. When the picked port is taken by the time
    /// Redis binds it, another is tried.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::BadPolicy`], [`Error::Exited`]/[`Error::NotReady`] with
    /// the log, [`Error::Io`].
    pub async fn start(opts: RedisOptions) -> Result<Redis, Error> {
        let binary = find_binary()?;
        if let Some(policy) = &opts.maxmemory_policy {
            check_policy(policy)?;
        }
        let dir = absolute(&opts.dir)?;
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        stop_stale(&dir)?;
        let socket =
            Some(dir.join("redis.sock")).filter(|s| s.as_os_str().len() <= MAX_SOCKET_PATH);
        if socket.is_none() {
            tracing::warn!(
                "{} is too long a path for a unix socket; Redis listens on TCP only",
                dir.display()
            );
        }
        let attempts = if opts.port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match opts.port {
                Some(p) => p,
                None => free_port().map_err(Error::io("pick a free port on", "127.0.0.1"))?,
            };
            let conf = redis_conf(&ConfSpec {
                dir: &dir,
                port,
                socket: socket.as_deref(),
                maxmemory: opts.maxmemory,
                policy: opts.maxmemory_policy.as_deref(),
                persistence: opts.persistence,
            });
            let conf_path = dir.join("redis.conf");
            std::fs::write(&conf_path, conf).map_err(Error::io("write", &conf_path))?;
            let mut redis = spawn(&binary, &dir, socket.clone(), port)?;
            match redis.wait_ready().await {
                Ok(()) => return Ok(redis),
                Err(Error::Exited { log, .. }) if port_taken(&log) && attempt < attempts => {
                    tracing::warn!("port {port} was taken before Redis bound it; trying another");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(Error::Exited {
                    status,
                    log: self.start_log(40),
                });
            }
            // -LOADING (a persistent Redis reading its data) means not yet.
            // A short wait: a port another process holds may accept and never answer.
            let pong =
                tokio::time::timeout(Duration::from_secs(1), command(self.port, &["PING"])).await;
            if matches!(pong, Ok(Ok(Reply::Simple(ref s))) if s == "PONG") {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    port: self.port,
                    waited: READY_TIMEOUT,
                    log: self.start_log(40),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The unix socket, or `None` when the dir's path is too long for one.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// The last `n` lines of the log (and of what Redis printed before it opened it).
    pub fn log(&self, n: usize) -> String {
        self.log_lines(0, n)
    }

    /// The last `n` lines this start wrote: a crashed run's lines are left out of errors.
    fn start_log(&self, n: usize) -> String {
        self.log_lines(self.log_start, n)
    }

    fn log_lines(&self, from: u64, n: usize) -> String {
        let mut lines = Vec::new();
        if let Ok(text) = std::fs::read_to_string(self.dir.join("stderr.log")) {
            lines.extend(text.lines().map(str::to_string));
        }
        if let Ok(mut file) = std::fs::File::open(self.log_path()) {
            let mut text = String::new();
            if file.seek(SeekFrom::Start(from)).is_ok() && file.read_to_string(&mut text).is_ok() {
                lines.extend(text.lines().map(str::to_string));
            }
        }
        let skip = lines.len().saturating_sub(n);
        lines[skip..].join("\n")
    }

    /// How the server exited, if it has.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// Sends one command on a fresh connection and returns Redis's reply; an error reply
    /// (`-OOM ...`) is a [`Reply::Error`], not an `Err`.
    ///
    /// # Errors
    /// [`Error::Command`] when Redis cannot be reached or does not answer in time.
    pub async fn command<A: AsRef<[u8]>>(&self, args: &[A]) -> Result<Reply, Error> {
        command(self.port, args).await
    }

    /// `INFO`'s fields (stats, memory, clients, errorstats, ...): `keyspace_hits`,
    /// `evicted_keys`, `used_memory`, `maxmemory`, `connected_clients`, `errorstat_OOM`, ...
    ///
    /// # Errors
    /// [`Error::Command`], or [`Error::Reply`] when the answer is not INFO's text.
    pub async fn info(&self) -> Result<BTreeMap<String, String>, Error> {
        info(self.port).await
    }

    /// Stops Redis: SIGTERM (Redis exits without saving when persistence is off), SIGKILL
    /// after a grace period.
    pub async fn stop(mut self) {
        signal(self.pid, libc::SIGTERM);
        let started = Instant::now();
        while self.exited().is_none() && started.elapsed() < TERM_GRACE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Drop does the rest (SIGKILL if still running, the pid file).
    }

    fn stop_now(&mut self) {
        if self.exited().is_none() {
            signal(self.pid, libc::SIGTERM);
            let started = Instant::now();
            while self.exited().is_none() && started.elapsed() < TERM_GRACE {
                std::thread::sleep(Duration::from_millis(10));
            }
            if self.exited().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Spawns `redis-server <dir>/redis.conf` with PDEATHSIG and writes the pid file.
fn spawn(binary: &Path, dir: &Path, socket: Option<PathBuf>, port: u16) -> Result<Redis, Error> {
    let stderr_path = dir.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).map_err(Error::io("create", &stderr_path))?;
    let log_start = std::fs::metadata(dir.join("redis.log")).map_or(0, |m| m.len());
    let mut command = Command::new(binary);
    command
        .arg(dir.join("redis.conf"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SIGTERM, not SIGKILL: Redis is one process and exits at once on SIGTERM, and a Redis
    // asked to persist gets to flush its append-only file.
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid, kill, getpid).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() as u32 != parent {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(Error::io("start", binary))?;
    let pid = child.id();
    // The guard exists before the pid file is written, so a failure below still stops Redis.
    let redis = Redis {
        child,
        dir: dir.to_path_buf(),
        socket,
        port,
        pid,
        log_start,
    };
    let pid_file = dir.join(PID_FILE);
    std::fs::write(&pid_file, format!("{pid}\n")).map_err(Error::io("write", &pid_file))?;
    Ok(redis)
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(Error::io("read the current dir for", path))?;
    Ok(cwd.join(path))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// True while a redis-server runs (for callers holding only a pid, such as a run-state file).
pub fn server_alive(pid: u32) -> bool {
    is_alive(pid)
}

/// Sends one command to the Redis on 127.0.0.1:`port` on a fresh connection (the lab's
/// console and monitoring reach a server another process started this way); an error reply
/// (`-OOM ...`) is a [`Reply::Error`], not an `Err`.
///
/// # Errors
/// [`Error::Command`] when Redis cannot be reached or does not answer in time.
pub async fn command<A: AsRef<[u8]>>(port: u16, args: &[A]) -> Result<Reply, Error> {
    let name = args
        .first()
        .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
        .unwrap_or_default();
    let call = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut stream = tokio::io::BufReader::new(stream);
        stream.get_mut().write_all(&encode(args)).await?;
        read_reply(&mut stream).await
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(source)) => Err(Error::Command {
            command: name,
            port,
            source,
        }),
        Err(_) => Err(Error::Command {
            command: name,
            port,
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no reply within {COMMAND_TIMEOUT:?}"),
            ),
        }),
    }
}

/// `INFO` of the Redis on 127.0.0.1:`port`, as a map.
///
/// # Errors
/// [`Error::Command`], or [`Error::Reply`] when the answer is not INFO's text.
pub async fn info(port: u16) -> Result<BTreeMap<String, String>, Error> {
    match command(port, &["INFO"]).await? {
        Reply::Bulk(Some(text)) => Ok(parse_info(&String::from_utf8_lossy(&text))),
        other => Err(Error::Reply {
            command: "INFO".into(),
            port,
            reply: format!("{other:?}"),
        }),
    }
}
