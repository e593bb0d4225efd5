//! `PgServer`: one lab-owned PostgreSQL cluster, initialised once, started on a free port and
//! stopped (and reaped) by its guard.

use crate::binaries::{self, BinarySource};
use crate::install::{self, sh_quote, RunAs};
use crate::process;
use crate::Error;
use postgresql_embedded::{PostgreSQL, Settings, VersionReq};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The superuser the lab logs in as.
pub const SUPERUSER: &str = "postgres";

/// The server's log in its data directory (where `pg_ctl start` writes it).
const LOG_FILE: &str = "start.log";
/// How long `pg_ctl start` and `initdb` may take before the crate gives up on them.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to accept TCP connections once `pg_ctl` says it started.
const READY_DEADLINE: Duration = Duration::from_secs(15);
/// Attempts at starting on a freshly picked port, in case another process takes it first.
const PORT_ATTEMPTS: usize = 3;

/// What to start: where the cluster lives, its settings and its port.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Lab-owned directory holding `data/` (PGDATA), `run/` (the Unix socket), `install/` (the
    /// links or wrappers the tools run through) and `password` (the superuser's password).
    pub cluster_dir: PathBuf,
    /// `postgresql.conf` settings (e.g. `max_connections` = `50`), passed as `-c name=value` at
    /// every start, so they override the files and changing them works on an existing cluster.
    pub settings: BTreeMap<String, String>,
    /// `None`: pick a free port on 127.0.0.1 (never 5432).
    pub port: Option<u16>,
}

/// A running PostgreSQL server. Dropping it stops the server (fast shutdown, escalating to
/// immediate and SIGKILL) and reaps it; [`PgServer::stop`] does the same and reports errors.
#[derive(Debug)]
pub struct PgServer {
    pg: PostgreSQL,
    cluster_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    password: String,
    pid: Option<u32>,
    new_cluster: bool,
    binaries: BinarySource,
    stopped: bool,
    /// Held (flock) while this guard owns the cluster; dropped after the server stops.
    _lock: std::fs::File,
}

impl PgServer {
    /// Finds the binaries, stops a server a crashed run left on `cluster_dir`, runs initdb when
    /// the cluster is new, starts the server on 127.0.0.1 and waits until it accepts connections.
    ///
    /// # Errors
    /// [`Error::BinariesNotFound`] with install advice; [`Error::Init`] or [`Error::Start`] with
    /// what initdb or the server said; [`Error::Io`] for the lab's own files.
    pub async fn start(opts: PgOptions) -> Result<PgServer, Error> {
        let mut binaries = binaries::find_binaries()?;
        if let BinarySource::Download(cache) = &binaries {
            binaries = BinarySource::Downloaded(binaries::download(cache).await?);
        }
        Self::start_with(opts, binaries).await
    }

    /// [`PgServer::start`] with binaries the caller already found.
    ///
    /// # Errors
    /// As [`PgServer::start`], except for finding binaries.
    pub async fn start_with(opts: PgOptions, binaries: BinarySource) -> Result<PgServer, Error> {
        let configuration = server_configuration(&opts.settings)?;
        std::fs::create_dir_all(&opts.cluster_dir)
            .map_err(Error::io("create directory", &opts.cluster_dir))?;
        let cluster_dir = opts
            .cluster_dir
            .canonicalize()
            .map_err(Error::io("resolve", &opts.cluster_dir))?;
        let data_dir = data_dir_of(&cluster_dir);

        // One owner per cluster: the lock is released when the guard drops or its process dies,
        // so a server found below without a lock holder was left by a crashed run.
        let lock = lock_cluster(&cluster_dir)?;
        let stale_dir = cluster_dir.clone();
        tokio::task::spawn_blocking(move || process::stop_stale(&stale_dir))
            .await
            .map_err(|e| Error::Stop {
                pid: 0,
                data_dir: data_dir.clone(),
                message: e.to_string(),
            })??;

        let run_as = RunAs::for_data_dir(&data_dir);
        if run_as != RunAs::CurrentUser {
            // The server's user must be able to enter the cluster dir (tempdirs are 0700).
            let mode = std::fs::metadata(&cluster_dir)
                .map_err(Error::io("inspect", &cluster_dir))?
                .permissions()
                .mode();
            std::fs::set_permissions(&cluster_dir, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(Error::io("chmod", &cluster_dir))?;
            run_as.check_reachable(&cluster_dir)?;
        }
        let install_dir =
            install::prepare(&cluster_dir.join("install"), &binaries.bin_dir(), run_as)?;

        let new_cluster = !data_dir.join("PG_VERSION").is_file();
        let password_file = cluster_dir.join("password");
        let password = if new_cluster {
            if data_dir.exists() {
                // A data dir without PG_VERSION is what an interrupted initdb leaves: start over.
                tracing::warn!("removing incomplete cluster {}", data_dir.display());
                std::fs::remove_dir_all(&data_dir)
                    .map_err(Error::io("remove incomplete data dir", &data_dir))?;
            }
            create_private_dir(&data_dir, run_as)?;
            let password = random_password()?;
            write_private_file(&password_file, &password, run_as)?;
            password
        } else {
            let password = std::fs::read_to_string(&password_file)
                .unwrap_or_default()
                .trim()
                .to_string();
            if password.is_empty() {
                return Err(Error::PasswordMissing {
                    data_dir,
                    password_file,
                });
            }
            password
        };

        // Unix socket: inside the cluster dir, unless its path is too long or needs quoting
        // (pg_ctl passes it through /bin/sh unquoted); clients use TCP either way.
        let socket_dir = cluster_dir.join("run");
        let socket_ok = socket_dir.as_os_str().len() + "/.s.PGSQL.65535".len() < 100
            && socket_dir
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        let mut configuration = configuration;
        let socket_dir = if socket_ok {
            if !socket_dir.exists() {
                create_private_dir(&socket_dir, run_as)?;
            }
            Some(socket_dir)
        } else {
            configuration.insert("unix_socket_directories".to_string(), sh_quote(""));
            None
        };

        let mut settings = Settings {
            releases_url: String::new(),
            version: VersionReq::STAR,
            installation_dir: install_dir,
            password_file,
            data_dir: data_dir.clone(),
            host: "127.0.0.1".to_string(),
            port: 0,
            username: SUPERUSER.to_string(),
            password: password.clone(),
            temporary: false,
            timeout: Some(COMMAND_TIMEOUT),
            configuration,
            trust_installation_dir: true,
            socket_dir,
        };

        if new_cluster {
            let started = Instant::now();
            PostgreSQL::new(settings.clone())
                .setup()
                .await
                .map_err(|e| Error::Init {
                    data_dir: data_dir.clone(),
                    message: e.to_string(),
                })?;
            tracing::info!(
                "initdb of {} took {:?}",
                data_dir.display(),
                started.elapsed()
            );
        }

        let mut attempt = 0;
        let pg = loop {
            attempt += 1;
            settings.port = match opts.port {
                Some(port) => port,
                None => free_port().map_err(Error::io("pick a free port on", "127.0.0.1"))?,
            };
            let mut pg = PostgreSQL::new(settings.clone());
            let started = Instant::now();
            match pg.start().await {
                Ok(()) => {
                    tracing::info!(
                        "PostgreSQL started on port {} in {:?}",
                        settings.port,
                        started.elapsed()
                    );
                    break pg;
                }
                Err(e) => {
                    let error = start_error(&data_dir, settings.port, e.to_string());
                    let port_taken = matches!(&error, Error::Start { log_tail, .. }
                        if log_tail.contains("could not bind") || log_tail.contains("already in use"));
                    if opts.port.is_none() && port_taken && attempt < PORT_ATTEMPTS {
                        tracing::warn!("port {} was taken; trying another", settings.port);
                        continue;
                    }
                    // Do not leave a half-started server behind (e.g. pg_ctl timed out).
                    if let Err(e) = process::stop_stale(&cluster_dir) {
                        tracing::warn!("after a failed start: {e}");
                    }
                    return Err(error);
                }
            }
        };

        let mut server = PgServer {
            pg,
            cluster_dir,
            data_dir: data_dir.clone(),
            port: settings.port,
            password,
            pid: process::read_postmaster_pid(&data_dir),
            new_cluster,
            binaries,
            stopped: false,
            _lock: lock,
        };
        // pg_ctl -w waited for the postmaster to say "ready"; confirm a client can connect.
        if let Err(message) = wait_accepting(server.port, server.pid, READY_DEADLINE).await {
            server.stop_now();
            return Err(start_error(&data_dir, settings.port, message));
        }
        Ok(server)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgresql://postgres:<password>@127.0.0.1:<port>/<database>`, accepted by sqlx and psql.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/{}",
            self.password,
            self.port,
            percent_encode(database)
        )
    }

    /// The superuser's password (stored in `<cluster_dir>/password`).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The postmaster's pid, from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        self.pid
    }

    /// The data directory (`<cluster_dir>/data`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's log (`start.log` in the data directory, where pg_ctl sends it).
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// How long the server's log is now: pass it to [`PgServer::failure_since`] after a
    /// failed statement.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path()).map_or(0, |m| m.len())
    }

    /// The last PANIC or FATAL line the server logged after byte `from` of its log, if any:
    /// why a backend or the whole server died while its client only saw the connection close
    /// (e.g. `PANIC: could not write to file "pg_wal/...": No space left on device`).
    pub fn failure_since(&self, from: u64) -> Option<String> {
        let bytes = std::fs::read(self.log_path()).ok()?;
        let start = usize::try_from(from).ok()?.min(bytes.len());
        String::from_utf8_lossy(&bytes[start..])
            .lines()
            .rev()
            .find(|line| line.contains("PANIC:") || line.contains("FATAL:"))
            .map(str::to_owned)
    }

    /// The cluster directory, resolved to an absolute path.
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// True when this start ran initdb: the caller seeds the cluster then.
    pub fn is_new_cluster(&self) -> bool {
        self.new_cluster
    }

    /// Where the server binaries came from.
    pub fn binaries(&self) -> &BinarySource {
        &self.binaries
    }

    /// Writes every file of the data directory to disk, as `initdb --sync-only` does.
    ///
    /// What makes the cluster durable again after a stretch with `fsync = off` (the lab's
    /// seed is a bulk load run that way): set `fsync` back on, `CHECKPOINT`, then call this,
    /// since files written while `fsync` was off may still sit only in the OS's cache.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that could not be opened or synced.
    pub fn sync_data_dir(&self) -> Result<(), Error> {
        sync_tree(&self.data_dir)
    }

    /// Stops the server (`pg_ctl stop -m fast`), waits until the postmaster has exited and reaps it.
    ///
    /// # Errors
    /// [`Error::Stop`] when the server would not stop even after SIGKILL.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.stopped = true;
        let pg_ctl_result = self.pg.stop().await;
        let Some(pid) = self.pid else {
            return pg_ctl_result.map_err(|e| Error::Stop {
                pid: 0,
                data_dir: self.data_dir.clone(),
                message: e.to_string(),
            });
        };
        if let Err(e) = &pg_ctl_result {
            tracing::warn!("pg_ctl stop failed ({e}); signalling pid {pid}");
        }
        let data_dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            if process::wait_gone(pid, Duration::from_secs(2)) {
                Ok(())
            } else {
                process::terminate(pid, &data_dir)
            }
        })
        .await
        .map_err(|e| Error::Stop {
            pid,
            data_dir: self.data_dir.clone(),
            message: e.to_string(),
        })?
    }

    /// The blocking stop behind `Drop`: signals and waits, never panics.
    fn stop_now(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(pid) = self.pid {
            if process::is_postmaster_of(pid, &self.data_dir) {
                if let Err(e) = process::terminate(pid, &self.data_dir) {
                    tracing::error!("{e}");
                }
            }
            process::reap(pid);
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Takes `<cluster_dir>/lock` exclusively (flock), or fails with [`Error::InUse`].
fn lock_cluster(cluster_dir: &Path) -> Result<std::fs::File, Error> {
    use std::os::fd::AsRawFd;
    let path = cluster_dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    // SAFETY: flock on a file descriptor we own for the duration of the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            return Err(Error::InUse {
                cluster_dir: cluster_dir.to_path_buf(),
            });
        }
        return Err(Error::io("lock", &path)(err));
    }
    Ok(file)
}

/// fsyncs every regular file and directory under `dir` (symlinks, e.g. `pg_wal` elsewhere,
/// are followed once: they point at directories PostgreSQL owns).
/// A file the running server removed meanwhile (a temporary file, a recycled WAL segment)
/// needs no syncing.
fn sync_tree(dir: &Path) -> Result<(), Error> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let path = entry.map_err(io("list", dir))?.path();
        let meta = match std::fs::metadata(&path) {
            Err(e) if gone(&e) => continue,
            meta => meta.map_err(io("inspect", &path))?,
        };
        if meta.is_dir() {
            sync_tree(&path)?;
        } else if meta.is_file() {
            match std::fs::File::open(&path).and_then(|f| f.sync_all()) {
                Err(e) if !gone(&e) => return Err(io("sync", &path)(e)),
                _ => {}
            }
        }
    }
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", dir))
}

/// `<cluster_dir>/data`.
pub(crate) fn data_dir_of(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("data")
}

/// The lab's defaults overlaid with the caller's settings, each value quoted for /bin/sh (pg_ctl
/// hands `-o` options to the shell).
fn server_configuration(user: &BTreeMap<String, String>) -> Result<HashMap<String, String>, Error> {
    let mut settings = BTreeMap::from([
        // Loopback only: a lab server is never reachable from the network.
        ("listen_addresses".to_string(), "127.0.0.1".to_string()),
        // Backends of clients that went away (a killed service) stop within a second.
        (
            "client_connection_check_interval".to_string(),
            "1s".to_string(),
        ),
    ]);
    for (name, value) in user {
        let invalid = |reason| Error::InvalidSetting {
            name: name.clone(),
            reason,
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(invalid("names are letters, digits, '_' and '.'"));
        }
        match name.as_str() {
            "port" => return Err(invalid("set PgOptions::port instead")),
            "listen_addresses" => return Err(invalid("the lab listens on 127.0.0.1 only")),
            _ => {}
        }
        if value.contains(['\n', '\r', '\0']) {
            return Err(invalid("values cannot hold newlines or NUL"));
        }
        settings.insert(name.clone(), value.clone());
    }
    Ok(settings
        .into_iter()
        .map(|(k, v)| (k, sh_quote(&v)))
        .collect())
}

/// Polls a TCP connect to 127.0.0.1:`port` until it succeeds, the postmaster dies, or `deadline`.
async fn wait_accepting(port: u16, pid: Option<u32>, deadline: Duration) -> Result<(), String> {
    let until = Instant::now() + deadline;
    loop {
        let last_error = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => return Ok(()),
            Err(e) => e.to_string(),
        };
        if pid.is_some_and(|pid| !process::is_alive(pid)) {
            return Err(format!(
                "the postmaster exited; last connect error: {last_error}"
            ));
        }
        if Instant::now() >= until {
            return Err(format!(
                "not accepting connections after {deadline:?}; last error: {last_error}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An [`Error::Start`] carrying the tail of the server log.
fn start_error(data_dir: &Path, port: u16, message: String) -> Error {
    let log = data_dir.join(LOG_FILE);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let log_tail = lines[lines.len().saturating_sub(20)..].join("\n");
    Error::Start {
        port,
        data_dir: data_dir.to_path_buf(),
        message,
        log,
        log_tail,
    }
}

/// A free port on 127.0.0.1 chosen by the kernel, never 5432.
fn free_port() -> std::io::Result<u16> {
    loop {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port();
        if port != 5432 {
            return Ok(port);
        }
    }
}

/// 24 hex characters from /dev/urandom: URL-safe, so `url()` needs no escaping.
fn random_password() -> Result<String, Error> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(Error::io("read", "/dev/urandom"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates `dir` with mode 0700, owned by the server's user.
pub(crate) fn create_private_dir(dir: &Path, run_as: RunAs) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(Error::io("chmod", dir))?;
    run_as.give(dir)
}

/// Writes `contents` to `path` with mode 0600, owned by the server's user (initdb reads it).
pub(crate) fn write_private_file(path: &Path, contents: &str, run_as: RunAs) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(Error::io("write", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(Error::io("chmod", path))?;
    run_as.give(path)
}

/// Percent-encodes everything but unreserved URL characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_settings_override_defaults_and_are_quoted() {
        let user = BTreeMap::from([(
            "client_connection_check_interval".to_string(),
            "5s".to_string(),
        )]);
        let conf = server_configuration(&user).unwrap();
        assert_eq!(conf["client_connection_check_interval"], "'5s'");
        assert_eq!(conf["listen_addresses"], "'127.0.0.1'");
    }

    #[test]
    fn port_and_odd_names_are_refused() {
        for name in ["port", "listen_addresses", "a b", ""] {
            let user = BTreeMap::from([(name.to_string(), "1".to_string())]);
            assert!(
                matches!(
                    server_configuration(&user),
                    Err(Error::InvalidSetting { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn database_names_are_percent_encoded() {
        assert_eq!(percent_encode("my db/x"), "my%20db%2Fx");
    }
}
