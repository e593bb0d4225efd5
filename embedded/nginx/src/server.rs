//! Starting, validating, reloading and stopping one nginx: the [`Nginx`] guard.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{main_conf, site_text};
use crate::stale::{children, is_alive, kill_holders, signal, stop_stale, TERM_GRACE};
use crate::{find_binary, Error};

/// How long nginx may take to accept connections after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct NginxOptions {
    /// The directory nginx owns: `conf/`, `logs/`, `temp/`. Created if missing.
    pub prefix: PathBuf,
    /// `http`-context nginx config (upstreams and a `server` with `listen {{listen}};`).
    pub site: String,
    /// How `nginx -t` errors name the site file (say `deploy/nginx.conf`); empty keeps the path.
    pub site_label: String,
    /// The port to listen on; a free one when `None`.
    pub port: Option<u16>,
}

/// A running nginx (master + workers). Dropping it stops them.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    binary: PathBuf,
    prefix: PathBuf,
    site_label: String,
    port: u16,
    pid: u32,
}

impl Nginx {
    /// Stops a stale nginx of the prefix, writes the config, validates it with `nginx -t`,
    /// starts nginx in the foreground and waits until it accepts connections.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::NotLoopback`], [`Error::Invalid`] (nginx's own words),
    /// [`Error::Exited`]/[`Error::NotReady`] with the error log, [`Error::Io`].
    pub async fn start(opts: NginxOptions) -> Result<Nginx, Error> {
        let binary = find_binary()?;
        let prefix = absolute(&opts.prefix)?;
        for dir in ["conf", "logs", "temp"] {
            let d = prefix.join(dir);
            std::fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
        }
        stop_stale(&prefix)?;
        let port = match opts.port {
            Some(p) => p,
            None => free_port().map_err(Error::io("pick a free port on", "127.0.0.1"))?,
        };
        let site = site_text(&opts.site, port)?;
        write_conf(&prefix, "site.conf", "nginx.conf", &site)?;
        check(&binary, &prefix, "nginx.conf", &opts.site_label)?;
        let stderr_path = prefix.join("logs").join("stderr.log");
        let stderr =
            std::fs::File::create(&stderr_path).map_err(Error::io("create", &stderr_path))?;
        let mut command = Command::new(&binary);
        command
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(prefix.join("conf").join("nginx.conf"))
            .args(["-g", "daemon off; master_process on;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SIGTERM, not SIGKILL: a master that gets SIGTERM stops its workers before it exits,
        // while a SIGKILLed master leaves them running (PDEATHSIG is not inherited by fork).
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid, kill, getpid).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() as u32 != parent {
                    libc::kill(libc::getpid(), libc::SIGTERM);
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(Error::io("start", &binary))?;
        let pid = child.id();
        let mut nginx = Nginx {
            child,
            binary,
            prefix,
            site_label: opts.site_label,
            port,
            pid,
        };
        nginx.wait_ready().await?;
        Ok(nginx)
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(Error::Exited {
                    status,
                    log: self.error_log(40),
                });
            }
            let connected = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok();
            if connected && !children(self.pid).is_empty() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    port: self.port,
                    waited: READY_TIMEOUT,
                    log: self.error_log(40),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The worker processes' pids.
    pub fn worker_pids(&self) -> Vec<u32> {
        children(self.pid)
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.prefix.join("logs").join("error.log")
    }

    /// The access log, one `lab`-format line per request (see [`crate::access_log_lines`]).
    pub fn access_log_path(&self) -> PathBuf {
        self.prefix.join("logs").join("access.log")
    }

    /// The last `n` lines of the error log (and of what nginx printed before it opened it).
    pub fn error_log(&self, n: usize) -> String {
        let mut lines = Vec::new();
        for path in [
            self.prefix.join("logs").join("stderr.log"),
            self.error_log_path(),
        ] {
            if let Ok(text) = std::fs::read_to_string(path) {
                lines.extend(text.lines().map(str::to_string));
            }
        }
        let skip = lines.len().saturating_sub(n);
        lines[skip..].join("\n")
    }

    /// How the master exited, if it has.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// Validates `site` with `nginx -t` and, when valid, makes it the running config (SIGHUP:
    /// new workers start on it, old ones finish their requests). An invalid site changes
    /// nothing and comes back as [`Error::Invalid`] with nginx's own words.
    ///
    /// # Errors
    /// [`Error::NotLoopback`], [`Error::Invalid`], [`Error::ReloadTimeout`], [`Error::Io`].
    pub async fn reload(&mut self, site: &str) -> Result<(), Error> {
        let site = site_text(site, self.port)?;
        write_conf(&self.prefix, "site.next.conf", "nginx.next.conf", &site)?;
        check(
            &self.binary,
            &self.prefix,
            "nginx.next.conf",
            &self.site_label,
        )?;
        let conf = self.prefix.join("conf");
        let (from, to) = (conf.join("site.next.conf"), conf.join("site.conf"));
        std::fs::rename(&from, &to).map_err(Error::io("replace", &to))?;
        let old = children(self.pid);
        signal(self.pid, libc::SIGHUP);
        let started = Instant::now();
        let waited = Duration::from_secs(10);
        while !children(self.pid).iter().any(|p| !old.contains(p)) {
            if started.elapsed() > waited {
                return Err(Error::ReloadTimeout {
                    waited,
                    log: self.error_log(20),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Old workers still accept until they see the signal; they exit once their requests
        // finish. Past the grace period they only serve requests already in flight.
        let grace = Instant::now();
        while old.iter().any(|p| is_alive(*p)) && grace.elapsed() < TERM_GRACE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops nginx: SIGTERM (fast shutdown; the master stops its workers), SIGKILL after a
    /// grace period, then any process still holding the prefix's logs.
    pub async fn stop(mut self) {
        signal(self.pid, libc::SIGTERM);
        let started = Instant::now();
        while self.exited().is_none() && started.elapsed() < TERM_GRACE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Drop does the rest (SIGKILL if still running, orphaned workers).
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
        kill_holders(&self.prefix);
        let _ = std::fs::remove_file(self.prefix.join("logs").join("nginx.pid"));
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Checks `site` with `nginx -t` in a scratch area of `prefix`, without starting anything.
///
/// # Errors
/// [`Error::NotFound`], [`Error::NotLoopback`], [`Error::Invalid`], [`Error::Io`].
pub fn validate(prefix: &Path, site: &str, site_label: &str) -> Result<(), Error> {
    let binary = find_binary()?;
    let prefix = absolute(prefix)?;
    for dir in ["conf", "logs", "temp"] {
        let d = prefix.join(dir);
        std::fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
    }
    // Any port will do for a syntax check: nginx -t does not bind.
    let site = site_text(site, 1)?;
    write_conf(&prefix, "site.check.conf", "nginx.check.conf", &site)?;
    check(&binary, &prefix, "nginx.check.conf", site_label)
}

fn write_conf(prefix: &Path, site_name: &str, main_name: &str, site: &str) -> Result<(), Error> {
    let conf = prefix.join("conf");
    let site_file = conf.join(site_name);
    std::fs::write(&site_file, site).map_err(Error::io("write", &site_file))?;
    let main = conf.join(main_name);
    std::fs::write(&main, main_conf(prefix, &site_file)).map_err(Error::io("write", &main))
}

/// Runs `nginx -t` on `conf/<main_name>`; nginx's output is the error, with the site file's
/// path replaced by `site_label`.
fn check(binary: &Path, prefix: &Path, main_name: &str, site_label: &str) -> Result<(), Error> {
    let main = prefix.join("conf").join(main_name);
    let output = Command::new(binary)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&main)
        .args(["-g", "daemon off; master_process on;"])
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io("run nginx -t with", binary))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if !site_label.is_empty() {
        for name in ["site.conf", "site.next.conf", "site.check.conf"] {
            text = text.replace(
                &prefix.join("conf").join(name).display().to_string(),
                site_label,
            );
        }
    }
    Err(Error::Invalid { output: text })
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

/// True while nginx's master runs (for callers holding only a pid, such as a run-state file).
pub fn master_alive(pid: u32) -> bool {
    is_alive(pid)
}
