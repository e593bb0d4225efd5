//! Shared test plumbing: running `sdlab` with a lab home, variants of a scenario's code in
//! temp dirs, and process checks through /proc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Scenario t1-01's folder (the first scenario's tests use it unqualified).
pub fn scenario_dir() -> PathBuf {
    scenario_dir_of("t1-01-diagnosing-failures")
}

/// A scenario's folder by its folder name, e.g. "t1-02-indexes-and-slow-queries".
pub fn scenario_dir_of(folder: &str) -> PathBuf {
    repo().join("scenarios").join(folder)
}

/// Where the tests keep their lab homes and fixture trees: `$SDLAB_TESTS_DIR`, default
/// /tmp/sdlab-tests. Two checkouts testing at once (a worktree beside a CI rehearsal) each
/// need their own: a lab home's stale-run cleanup would stop the other's servers.
pub fn tests_root() -> PathBuf {
    std::env::var_os("SDLAB_TESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/sdlab-tests"))
}

/// The lab home all tests share, outside the repository and enterable by `nobody` (the user
/// PostgreSQL runs as when the tests run as root).
pub fn shared_home() -> PathBuf {
    let home = tests_root().join("home");
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// A fresh, empty lab home (removed on drop).
pub fn fresh_home() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sdlab-home-")
        .tempdir_in("/tmp")
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `sdlab` with the given home, the repository's scenarios and the shared build dir.
pub fn sdlab(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sdlab"));
    cmd.env("SDLAB_HOME", home)
        .env("SDLAB_ROOT", repo())
        .env("SDLAB_TARGET_DIR", repo().join("target/sdlab-services"))
        .stdin(Stdio::null());
    cmd
}

/// Runs a command to completion (at most `limit`), returning its output.
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            kill(pid, libc::SIGKILL);
            panic!("command did not finish within {limit:?}");
        }
    }
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `sdlab check t1-01 <args>`: exit code, stdout (the table), stderr.
pub fn check(home: &Path, args: &[&str]) -> (i32, String, String) {
    check_scenario(home, "t1-01", args)
}

/// `sdlab check <id> <args>`: exit code, stdout (the table), stderr.
pub fn check_scenario(home: &Path, id: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = sdlab(home);
    cmd.arg("check").arg(id).args(args);
    let out = run(cmd, Duration::from_secs(900));
    let (stdout, stderr) = text(&out);
    eprintln!(
        "--- stdout\n{stdout}\n--- stderr (tail)\n{}",
        tail(&stderr, 40)
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The table line whose first column is `label`.
pub fn table_line<'a>(table: &'a str, label: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(label) && (l.ends_with("PASS") || l.ends_with("FAIL")))
        .unwrap_or_else(|| panic!("no line {label:?} in:\n{table}"))
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Copies a service folder (without build output) to a new temp dir for a variant.
pub fn variant_of(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("sdlab-variant-")
        .tempdir()
        .unwrap();
    copy_tree(from, dir.path());
    dir
}

/// Copies `from` to `to`, skipping build output.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "target" {
            continue;
        }
        let dst = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), dst).unwrap();
        }
    }
}

/// Replaces `from` with `to` in a file, failing if `from` is not there.
pub fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        file.display()
    );
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// `sdlab start <id>` in the background, returned once it printed its ready line.
pub struct Started {
    pub child: Child,
    pub took: Duration,
    pub url: String,
    /// Its stderr (the progress lines) so far, also echoed to the test's stderr.
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The progress line of `step` in a start's stderr (`[ok] <step> (1.2 s) <note>`).
pub fn step_line(stderr: &std::sync::Mutex<Vec<String>>, step: &str) -> String {
    let prefix = format!("[ok] {step} (");
    let lines = stderr.lock().unwrap();
    lines
        .iter()
        .find(|l| l.starts_with(&prefix))
        .cloned()
        .unwrap_or_else(|| panic!("no `{step}` progress line in {lines:?}"))
}

/// The lines `reader` yields, on a channel fed by a thread (so a test can wait with a deadline).
pub fn line_channel(
    reader: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `sdlab start t1-01`.
pub fn start(home: &Path) -> Started {
    start_scenario(home, "t1-01")
}

/// `sdlab start <id>`, up to its `ready <id> <url>` line.
pub fn start_scenario(home: &Path, id: &str) -> Started {
    let mut cmd = sdlab(home);
    cmd.arg("start").arg(id);
    start_command(cmd, id)
}

/// Every line a start printed on stderr so far.
pub fn step_lines(stderr: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    stderr.lock().unwrap().clone()
}

/// A prepared `sdlab start ...` command for scenario `id`, spawned, up to its ready line.
pub fn start_command(mut cmd: Command, id: &str) -> Started {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = line_channel(child.stdout.take().unwrap());
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = std::sync::Arc::clone(&stderr);
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("{line}");
            lines.lock().unwrap().push(line);
        }
    });
    let ready = format!("ready {id} ");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(&ready) => {
                let url = line.trim_start_matches(&ready).to_string();
                return Started {
                    child,
                    took: started.elapsed(),
                    url,
                    stderr,
                };
            }
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                panic!("sdlab start {id} did not print its ready line");
            }
        }
    }
}

/// The run state `sdlab` records: (owner, postmaster, service pids).
pub fn run_state(home: &Path) -> (u32, u32, Vec<u32>) {
    let bytes = std::fs::read(home.join("run/t1-01.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let pid = |v: &serde_json::Value| v.as_u64().unwrap() as u32;
    (
        pid(&v["owner_pid"]),
        pid(&v["postmaster_pid"]),
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| pid(&s["pid"]))
            .collect(),
    )
}

/// Whether a process runs (a zombie waiting for its parent counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let after = stat.rfind(')').unwrap();
            stat[after + 1..].split_whitespace().next() != Some("Z")
        }
        Err(_) => false,
    }
}

/// Waits up to `limit` for a process to be gone.
pub fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}

pub fn kill(pid: u32, sig: i32) {
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Processes whose command line mentions `needle` (to find anything a lab home left running).
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            // redis-server rewrites its command line ("redis-server 127.0.0.1:PORT"): it is
            // found by its working directory, its folder under the lab home.
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            if (cmd.contains(needle) || cwd.starts_with(needle)) && alive(pid) {
                found.push((pid, cmd));
            }
        }
    }
    found
}
