//! What this machine is missing: the checks the desktop app shows at first launch and
//! `sdlab doctor` prints. Each finding says what was looked for, what was found, and exactly
//! how to get what is missing. Nothing here installs anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::home::{LabHome, Sources};

/// One thing the lab needs, and whether this machine has it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What the lab needs, e.g. "Rust (cargo)".
    pub what: String,
    pub ok: bool,
    /// The version or path found, or why it was not.
    pub detail: String,
    /// How to get it (empty when `ok`).
    pub fix: String,
    /// `false` for things only some scenarios need (nginx): the lab starts without them.
    pub required: bool,
}

impl Finding {
    fn found(what: &str, detail: String, required: bool) -> Finding {
        Finding {
            what: what.to_string(),
            ok: true,
            detail,
            fix: String::new(),
            required,
        }
    }

    fn missing(what: &str, detail: String, fix: &str, required: bool) -> Finding {
        Finding {
            what: what.to_string(),
            ok: false,
            detail,
            fix: fix.to_string(),
            required,
        }
    }
}

/// Everything the lab needs to start a scenario, checked now.
pub fn check(home: &LabHome, sources: &Sources) -> Vec<Finding> {
    vec![
        cargo(),
        postgres(),
        replica_tools(),
        nginx(),
        redis(),
        data_dir(home),
        offline_crates(sources),
    ]
}

/// The findings that stop every scenario from starting (missing and required).
pub fn blocking(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| !f.ok && f.required).collect()
}

/// The cargo a build will run (`$CARGO`, else `cargo` on `PATH`).
pub fn cargo() -> Finding {
    const WHAT: &str = "Rust (cargo), to build the scenario services";
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    match version_of(Path::new(&cargo), "--version") {
        Ok(v) => Finding::found(WHAT, v, true),
        Err(why) => {
            let rustup_home =
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/cargo"));
            let hint = match rustup_home.filter(|p| p.is_file()) {
                Some(p) => format!(
                    "{} exists but is not on PATH: add `export PATH=\"$HOME/.cargo/bin:$PATH\"` to ~/.profile, log out and in, and start the lab again",
                    p.display()
                ),
                None => "install Rust with rustup: `curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh` \
                         (or `sudo apt install cargo`), then start the lab again"
                    .to_string(),
            };
            Finding::missing(
                WHAT,
                format!("`{}` did not run: {why}", cargo.to_string_lossy()),
                &hint,
                true,
            )
        }
    }
}

/// PostgreSQL's server binaries (never a download: this only looks).
pub fn postgres() -> Finding {
    const WHAT: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres)";
    let mut search = sdlab_embedded_postgres::BinarySearch::from_env();
    search.download = false;
    match sdlab_embedded_postgres::find_binaries_in(&search) {
        Ok(source) => {
            let postgres = source.bin_dir().join("postgres");
            let version = version_of(&postgres, "--version").unwrap_or_else(|e| e);
            Finding::found(WHAT, format!("{version} ({})", source.bin_dir().display()), true)
        }
        Err(e) => Finding::missing(
            WHAT,
            e.to_string(),
            "install them without a system cluster: `echo create_main_cluster=false | sudo tee \
             /etc/postgresql-common/createcluster.conf; sudo apt install postgresql` (Debian/Ubuntu), \
             or set SDLAB_PG_BIN to a folder holding initdb, pg_ctl and postgres",
            true,
        ),
    }
}

/// pg_basebackup and pg_receivewal beside the server binaries: what a scenario with a
/// streaming replica (`[topology.postgres] replicas = 1`) copies the primary with.
pub fn replica_tools() -> Finding {
    let mut search = sdlab_embedded_postgres::BinarySearch::from_env();
    search.download = false;
    match sdlab_embedded_postgres::find_binaries_in(&search) {
        Ok(source) => replica_tools_in(&source.bin_dir()),
        Err(_) => replica_tools_in(Path::new("(no PostgreSQL server binaries)")),
    }
}

/// [`replica_tools`] in one folder of PostgreSQL binaries.
pub fn replica_tools_in(bin_dir: &Path) -> Finding {
    const WHAT: &str = "pg_basebackup (scenarios with a streaming replica, e.g. t1-08)";
    let missing: Vec<&str> = ["pg_basebackup", "pg_receivewal"]
        .into_iter()
        .filter(|tool| !bin_dir.join(tool).is_file())
        .collect();
    if missing.is_empty() {
        let version = version_of(&bin_dir.join("pg_basebackup"), "--version").unwrap_or_else(|e| e);
        return Finding::found(WHAT, format!("{version} ({})", bin_dir.display()), false);
    }
    Finding::missing(
        WHAT,
        format!("{} not in {}", missing.join(" and "), bin_dir.display()),
        "they ship with the PostgreSQL server package: `sudo apt-get install -y postgresql` \
         (Debian/Ubuntu: postgresql-15 has them), or point SDLAB_PG_BIN at a folder holding \
         initdb, pg_ctl, postgres, pg_basebackup and pg_receivewal",
        false,
    )
}

/// nginx, which scenarios with a load balancer start (t1-04).
pub fn nginx() -> Finding {
    const WHAT: &str = "nginx (scenarios with a load balancer, e.g. t1-04)";
    match sdlab_embedded_nginx::find_binary() {
        Ok(path) => {
            let version = version_of(&path, "-v").unwrap_or_else(|e| e);
            Finding::found(WHAT, format!("{version} ({})", path.display()), false)
        }
        Err(e) => Finding::missing(
            WHAT,
            e.to_string(),
            "`sudo apt install nginx-light` (the lab starts its own nginx; `sudo systemctl disable --now nginx` \
             stops the system one), or set SDLAB_NGINX_BIN",
            false,
        ),
    }
}

/// redis-server, which scenarios with a cache start (the lab runs its own, never the system one).
pub fn redis() -> Finding {
    const WHAT: &str = "redis-server (scenarios with a cache)";
    match redis_server_embedded::find_binary() {
        Ok(path) => {
            let version = version_of(&path, "--version").unwrap_or_else(|e| e);
            Finding::found(WHAT, format!("{version} ({})", path.display()), false)
        }
        Err(e) => Finding::missing(
            WHAT,
            e.to_string(),
            "`sudo apt-get install -y redis-server` (the lab starts its own Redis; `sudo systemctl disable \
             --now redis-server` stops the system one), or set SDLAB_REDIS_BIN",
            false,
        ),
    }
}

/// The version line of the redis-server the lab would run, for the About box.
pub fn redis_version() -> Option<String> {
    let path = redis_server_embedded::find_binary().ok()?;
    version_of(&path, "--version").ok()
}

/// The lab's data folder can be created and written.
pub fn data_dir(home: &LabHome) -> Finding {
    const WHAT: &str = "a writable data folder";
    let probe = home.root.join(".sdlab-write-probe");
    let written = std::fs::create_dir_all(&home.root).and_then(|()| std::fs::write(&probe, b"ok"));
    let _ = std::fs::remove_file(&probe);
    match written {
        Ok(()) => Finding::found(WHAT, home.root.display().to_string(), true),
        Err(e) => Finding::missing(
            WHAT,
            format!("cannot write {}: {e}", home.root.display()),
            "make that folder writable by you, or point SDLAB_HOME at one that is",
            true,
        ),
    }
}

/// Vendored crates let the first build of a service work without a network.
pub fn offline_crates(sources: &Sources) -> Finding {
    const WHAT: &str = "the services' crates, for offline builds";
    let vendor = sources.vendor_dir();
    if vendor.is_dir() {
        Finding::found(WHAT, format!("vendored in {}", vendor.display()), false)
    } else {
        Finding::missing(
            WHAT,
            "not vendored: the first build of each service downloads its crates from crates.io".to_string(),
            "connect to the internet for the first build (later builds are offline), or install the \
             desktop package, which carries the crates",
            false,
        )
    }
}

/// The first line `program arg` prints (stdout, else stderr: nginx prints its version there).
fn version_of(program: &Path, arg: &str) -> Result<String, String> {
    let out = Command::new(program)
        .arg(arg)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("exited with {}", out.status));
    }
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

/// The findings as lines for a terminal or a dialog.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let mark = if f.ok {
            "ok "
        } else if f.required {
            "MISSING"
        } else {
            "note"
        };
        out.push_str(&format!("[{mark}] {}: {}\n", f.what, f.detail));
        if !f.ok {
            out.push_str(&format!("        → {}\n", f.fix));
        }
    }
    out
}
