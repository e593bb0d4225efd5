//! The reliability suite (issue 8): the lab abused the way a learner's day abuses it, with real
//! processes. `sdlab` is killed (SIGTERM, SIGKILL) at random points of start, load and check
//! and leaves nothing running; 100 randomized cycles of save, draft, rebuild, kill, kill
//! mid-save and reset against a real `sdlab serve` lose no saved version; service code that
//! panics, listens on the wrong port, never becomes healthy, eats memory or does not compile
//! gives a message with the service's own log lines; a broken environment (no PostgreSQL, no
//! nginx, an unusable lab home, a corrupt scenario.toml, a port taken, a stale run state, a
//! full disk) gives an actionable message and the lab stays usable; progress.json and a
//! SIGKILLed PostgreSQL survive.
//!
//! Most cases use a fixture scenario (`t2-99`, written to <tests root>/reliability-src):
//! a std-only HTTP service that builds in a second and misbehaves as a `mode` file in its
//! folder says, without PostgreSQL. The cases about PostgreSQL use t1-01 in a lab home of their
//! own; the no-orphans case uses t1-06 there (PostgreSQL, Redis, nginx and three instances),
//! and its replica case the fixture `t2-96` (the same service, with PostgreSQL and a
//! streaming replica, `replicas = 1`) in a home of its own, its worker case the fixture
//! `t2-95` (the same service, with PostgreSQL and two workers, `[topology.workers]`).
//! Each case adds a line to `target/reliability-summary.txt` (see `summary.rs`).
//! A run's random choices come from one seed, printed; `SDLAB_RELIABILITY_SEED` replays it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::summary::Case;

pub(crate) const FIXTURE_DIR: &str = "t2-99-reliability-fixture";
pub(crate) const FIXTURE: &str = "t2-99";

const FIXTURE_TOML: &str = r#"
id = "t2-99"
title = "Reliability fixture"
track = 2
stage = "crawling"
concepts = ["testing"]
minutes = 1
hints = [HINTS]

[topology]
instances = 1

[[requests]]
name = "hello"
method = "GET"
path = "/"
oracle = { status = [200], hint = "Hello." }

[profiles.explore]
description = "A few requests."
timeout = "1s"
stages = [{ duration = "3s", rate = 30 }]
mix = { hello = 1 }

[profiles.check]
description = "A few requests."
timeout = "1s"
stages = [{ duration = "3s", rate = 30 }]
mix = { hello = 1 }

[check]
profile = "check"

[[check.slo]]
metric = "error_rate"
max = 0.01
hint = "Errors."
"#;

pub(crate) const FIXTURE_MAIN: &str = r#"//! Reliability fixture: a tiny HTTP service that misbehaves as the file `mode` in its working
//! directory says: panic-at-start, wrong-port, never-healthy, eat-memory, panic-under-load.

use std::io::{Read, Write};

const VERSION: &str = "v0";

fn main() {
    let mode = std::fs::read_to_string("mode").unwrap_or_default().trim().to_string();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    println!("fixture {VERSION} starting, mode {mode:?}, PORT {port}");
    if mode == "panic-at-start" {
        panic!("fixture: cannot read its configuration (panic at start)");
    }
    if mode == "eat-memory" {
        let mut held: Vec<Vec<u8>> = Vec::new();
        loop {
            held.push(vec![7u8; 16 << 20]);
            println!("fixture holds {} MiB", held.len() * 16);
        }
    }
    let listen = if mode == "wrong-port" { 0 } else { port };
    let listener = std::net::TcpListener::bind(("127.0.0.1", listen)).expect("bind");
    println!("fixture listening on {}", listener.local_addr().unwrap());
    let mut served = 0u64;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut buf = [0u8; 8192];
        let n = stream.read(&mut buf).unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
        if path == "/" {
            served += 1;
        }
        if mode == "panic-under-load" && served > 20 {
            panic!("fixture: index out of bounds after {served} requests (panic under load)");
        }
        let (code, body) = match path.as_str() {
            "/healthz" if mode == "never-healthy" => (503, "waiting for a dependency that never comes".to_string()),
            "/healthz" => (200, "ok".to_string()),
            "/version" => (200, VERSION.to_string()),
            "/replica-url" => (200, std::env::var("DATABASE_REPLICA_URL").unwrap_or_default()),
            "/role" => (200, std::env::var("SDLAB_ROLE").unwrap_or_default()),
            "/metrics" => (200, format!("http_requests_total {served}\n")),
            _ => (200, "hello".to_string()),
        };
        let _ = write!(stream, "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    }
}
"#;

// --- fixture and plumbing ----------------------------------------------------------------

pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(bytes) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A sources tree (`SDLAB_ROOT`) with the repository's manifest and kit and the fixture scenario
/// (also used by `learner_parity.rs`);
/// `extra` adds scenario folders (name, scenario.toml text). Stable paths keep builds incremental.
pub(crate) fn fixture_sources(name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let root = tests_root().join(name);
    write_if_changed(
        &root.join("Cargo.toml"),
        &std::fs::read(repo().join("Cargo.toml")).unwrap(),
    );
    write_if_changed(
        &root.join("Cargo.lock"),
        &std::fs::read(repo().join("Cargo.lock")).unwrap(),
    );
    let kit = root.join("scenarios/kit");
    if kit.symlink_metadata().is_err() {
        std::fs::create_dir_all(root.join("scenarios")).unwrap();
        std::os::unix::fs::symlink(repo().join("scenarios/kit"), &kit).unwrap();
    }
    let dir = root.join("scenarios").join(FIXTURE_DIR);
    let hints: Vec<String> = (1..=60).map(|i| format!("\"Hint number {i}.\"")).collect();
    write_if_changed(
        &dir.join("scenario.toml"),
        FIXTURE_TOML.replace("HINTS", &hints.join(", ")).as_bytes(),
    );
    write_if_changed(
        &dir.join("SCENARIO.md"),
        b"# Reliability fixture\n\nA service for the reliability tests.\n",
    );
    for code in ["service", "solution"] {
        let manifest = format!(
            "[package]\nname = \"scenario-t2-99-{code}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n"
        );
        write_if_changed(&dir.join(code).join("Cargo.toml"), manifest.as_bytes());
        write_if_changed(&dir.join(code).join("src/main.rs"), FIXTURE_MAIN.as_bytes());
    }
    for (folder, toml) in extra {
        write_if_changed(
            &root.join("scenarios").join(folder).join("scenario.toml"),
            toml.as_bytes(),
        );
    }
    root
}

/// `sdlab` on the fixture sources.
fn lab(home: &Path) -> Command {
    let mut cmd = sdlab(home);
    cmd.env("SDLAB_ROOT", fixture_sources("reliability-src", &[]));
    cmd
}

/// The learner's copy of the fixture service in `home`.
fn learner_dir(home: &Path) -> PathBuf {
    home.join("work").join(FIXTURE_DIR).join("service")
}

/// A small deterministic generator (xorshift), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn new(case: &str) -> Rng {
        let seed = std::env::var("SDLAB_RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{case}: seed {seed} (SDLAB_RELIABILITY_SEED={seed} replays it)");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max))
    }
}

/// One HTTP/1.1 request (connection closed after it): status and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).to_string();
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {raw:?}")))?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies (axum's JSON is sent with a length; keep it simple otherwise).
    Ok((code, body))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_string()))
}

/// A running `sdlab serve`: its address and token.
struct Serve {
    child: Child,
    addr: String,
    token: String,
    _lines: Receiver<String>,
}

impl Serve {
    fn start(home: &Path) -> Serve {
        let mut child = lab(home)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = line_channel(child.stdout.take().unwrap());
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("sdlab serve printed no address");
        let rest = line
            .strip_prefix("serving http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let (addr, token) = rest.split_once("/#token=").unwrap();
        Serve {
            addr: addr.to_string(),
            token: token.to_string(),
            child,
            _lines: lines,
        }
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let (code, body) = http(&self.addr, method, path, Some(&self.token), body).unwrap();
        (code, json(&body))
    }

    fn file(&self, rel: &str) -> Option<String> {
        let (code, body) = self.call("GET", &format!("/api/scenarios/{FIXTURE}/files/{rel}"), b"");
        match code {
            200 => Some(body["content"].as_str().unwrap().to_string()),
            404 => None,
            _ => panic!("GET {rel}: {code} {body}"),
        }
    }

    fn kill(mut self, sig: i32) {
        kill(self.child.id(), sig);
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    /// A failed assertion must not leave the server (and what it started) running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lab home of the cases that need t1-01's PostgreSQL: its own (the golden tests' shared
/// home may be in use by a test beside this one), kept across runs so the seed is made once.
fn pg_home() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let home = tests_root().join("reliability-home");
    std::fs::create_dir_all(&home).unwrap();
    // Enterable by `nobody`, who runs PostgreSQL when the tests run as root.
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    home
}

/// Processes of this lab home still running after `limit` (PostgreSQL, services, nginx).
fn left_running(home: &Path, limit: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_mentioning(home.to_str().unwrap());
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sdlab <args>` to completion: exit code and stdout + stderr together.
fn sdlab_output(mut cmd: Command, limit: Duration) -> (i32, String) {
    cmd.stdin(Stdio::null());
    let out = run(cmd, limit);
    let (stdout, stderr) = text(&out);
    (
        out.status.code().unwrap_or(-1),
        format!("{stdout}\n{stderr}"),
    )
}

/// `sdlab start <id>` in the background with both streams on one channel, up to its ready line.
fn start_watched(mut cmd: Command, id: &str) -> (Child, Receiver<String>, String) {
    let mut child = cmd
        .arg("start")
        .arg(id)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        let lines = line_channel(stream);
        std::thread::spawn(move || {
            // Keep reading after the test stops listening: a closed pipe would kill `sdlab`.
            for line in lines {
                let _ = tx.send(line);
            }
        });
    }
    // Only the reader threads hold senders: the channel closes when the process is gone.
    drop(tx);
    let ready = format!("ready {id} ");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with(&ready) => {
                return (child, rx, line[ready.len()..].to_string())
            }
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("sdlab start {id} did not get ready:\n{seen}");
            }
        }
    }
}

// --- bad service code ----------------------------------------------------------------------

#[test]
fn bad_service_code_fails_the_start_with_a_clear_message_and_the_services_log() {
    let mut case = Case::new(
        "bad service code: compile error, panic at start, wrong port, never healthy, eats memory",
    );
    let home = fresh_home();
    let home = home.path();
    // A healthy start first: the fixture works, and the learner's copy exists.
    let (mut child, _, url) = start_watched(lab(home), FIXTURE);
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    eprintln!("fixture served at {url}");
    let main_rs = learner_dir(home).join("src/main.rs");
    // (mode, environment of the start, what its message must say)
    type BadCode<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[BadCode] = &[
        (
            "panic-at-start",
            &[],
            &[
                "exited during start-up",
                "panic at start",
                "fixture v0 starting",
            ],
        ),
        (
            "wrong-port",
            &[("SDLAB_READY_TIMEOUT_SECS", "3")],
            &[
                "did not answer GET /healthz",
                "the port given in $PORT",
                "fixture listening on 127.0.0.1:",
            ],
        ),
        (
            "never-healthy",
            &[("SDLAB_READY_TIMEOUT_SECS", "3")],
            &[
                "did not answer GET /healthz",
                "HTTP 503",
                "waiting for a dependency",
                "fixture v0 starting",
            ],
        ),
        (
            "eat-memory",
            &[("SDLAB_SERVICE_MEMORY_MB", "256")],
            &[
                "out of memory",
                "256 MiB",
                "SDLAB_SERVICE_MEMORY_MB",
                "fixture holds",
            ],
        ),
        (
            "compile-error",
            &[],
            &["does not compile", "src/main.rs", "error"],
        ),
    ];
    for (mode, env, expected) in cases {
        std::fs::write(learner_dir(home).join("mode"), mode).unwrap();
        if *mode == "compile-error" {
            std::fs::write(&main_rs, format!("{FIXTURE_MAIN}\nfn broken( {{\n")).unwrap();
        }
        let mut cmd = lab(home);
        cmd.arg("start").arg(FIXTURE).envs(env.iter().copied());
        let (code, out) = sdlab_output(cmd, Duration::from_secs(300));
        eprintln!("--- {mode}: exit {code}\n{}", tail(&out, 30));
        assert_ne!(code, 0, "{mode}: the start did not fail:\n{out}");
        for want in *expected {
            assert!(
                out.contains(want),
                "{mode}: the message lacks {want:?}:\n{out}"
            );
        }
        let left = left_running(home, Duration::from_secs(10));
        assert!(left.is_empty(), "{mode}: left running: {left:?}");
        case.survived();
    }
    // Fixed again, the lab starts as before: nothing of the failures stuck.
    std::fs::write(&main_rs, FIXTURE_MAIN).unwrap();
    std::fs::write(learner_dir(home).join("mode"), "ok").unwrap();
    let (mut child, _, _) = start_watched(lab(home), FIXTURE);
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    assert!(left_running(home, Duration::from_secs(10)).is_empty());
    case.survived();
}

#[test]
fn a_service_that_panics_under_load_is_reported_with_its_log() {
    let mut case = Case::new("bad service code: panics under load");
    let home = fresh_home();
    let home = home.path();
    // The first start makes the learner's copy; the mode goes into it before the second.
    let (mut first, _, _) = start_watched(lab(home), FIXTURE);
    kill(first.id(), libc::SIGTERM);
    first.wait().unwrap();
    std::fs::write(learner_dir(home).join("mode"), "panic-under-load").unwrap();
    let (mut child, lines, url) = start_watched(lab(home), FIXTURE);
    // Load straight at the service (`sdlab load` attaches to a running lab through its
    // PostgreSQL's run state, which this fixture has none of).
    let url = url.trim_start_matches("http://").to_string();
    let answered = (0..60)
        .filter(|_| matches!(http(&url, "GET", "/", None, b""), Ok((200, _))))
        .count();
    assert!(
        (1..60).contains(&answered),
        "{answered} of 60 requests answered"
    );
    // The running `sdlab start` tells the learner the service died, and why.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut said = String::new();
    while Instant::now() < deadline
        && !(said.contains("exited") && said.contains("panic under load"))
    {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            said.push_str(&line);
            said.push('\n');
        }
    }
    kill(child.id(), libc::SIGTERM);
    let _ = child.wait();
    assert!(
        said.contains("exited") && said.contains("panic under load"),
        "sdlab start said:\n{said}"
    );
    assert!(left_running(home, Duration::from_secs(10)).is_empty());
    case.survived();
}

// --- edits never lost ---------------------------------------------------------------------

/// A valid version of the fixture's main.rs, answering `/version` with `version`.
fn main_version(version: u64) -> String {
    FIXTURE_MAIN.replace(
        "const VERSION: &str = \"v0\";",
        &format!("const VERSION: &str = \"v{version}\";"),
    )
}

fn random_text(rng: &mut Rng, max: u64) -> String {
    let len = rng.below(max) as usize;
    let words = [
        "fn ",
        "let ",
        "pool",
        "index ",
        "\n",
        "é",
        "🦀",
        "{}",
        "\"quoted\" ",
        "x",
    ];
    let mut text = format!("version {}\n", rng.next());
    while text.len() < len {
        text.push_str(words[rng.below(words.len() as u64) as usize]);
    }
    text
}

#[test]
fn a_hundred_cycles_of_edit_save_rebuild_kill_and_reset_lose_no_saved_version() {
    let mut case =
        Case::new("edits never lost: 100 cycles of save/draft/rebuild/kill/kill mid-save/reset");
    let mut rng = Rng::new("edit cycles");
    let home = fresh_home();
    let home = home.path();
    let mut serve = Serve::start(home);
    let files = ["src/main.rs", "notes.md", "src/data.txt"];
    // What each file must hold now (None: absent), by the saves the lab acknowledged.
    let mut model: std::collections::BTreeMap<&str, Option<String>> = files
        .iter()
        .map(|f| (*f, (*f == "src/main.rs").then(|| FIXTURE_MAIN.to_string())))
        .collect();
    assert_eq!(serve.file("src/main.rs").as_deref(), Some(FIXTURE_MAIN));
    let mut lost = Vec::new();
    let mut version = 0;
    let mut counts = std::collections::BTreeMap::<&str, u32>::new();
    for cycle in 0..100 {
        let roll = rng.below(100);
        let op = match roll {
            0..40 => "save",
            40..48 => "draft",
            48..62 => "kill",
            62..76 => "kill mid-save",
            76..88 => "reset",
            _ => "rebuild",
        };
        *counts.entry(op).or_default() += 1;
        match op {
            "save" => {
                let file = files[rng.below(3) as usize];
                let content = if file == "src/main.rs" {
                    version += 1;
                    main_version(version)
                } else {
                    random_text(&mut rng, 300_000)
                };
                let (code, body) = serve.call(
                    "PUT",
                    &format!("/api/scenarios/{FIXTURE}/files/{file}"),
                    content.as_bytes(),
                );
                assert_eq!(code, 200, "cycle {cycle}: save {file}: {body}");
                model.insert(file, Some(content));
            }
            "draft" => {
                // On a file that always exists: a draft of a missing file reads as an empty file.
                let file = "src/main.rs";
                let (code, body) = serve.call(
                    "PUT",
                    &format!("/api/scenarios/{FIXTURE}/drafts/{file}"),
                    b"unsaved words",
                );
                assert_eq!(code, 200, "cycle {cycle}: draft {file}: {body}");
            }
            "kill" => {
                let sig = if rng.below(2) == 0 {
                    libc::SIGKILL
                } else {
                    libc::SIGTERM
                };
                serve.kill(sig);
                serve = Serve::start(home);
            }
            "kill mid-save" => {
                let file = ["notes.md", "src/data.txt"][rng.below(2) as usize];
                let content = random_text(&mut rng, 900_000);
                let (addr, token) = (serve.addr.clone(), serve.token.clone());
                let sent = content.clone();
                let saver = std::thread::spawn(move || {
                    http(
                        &addr,
                        "PUT",
                        &format!("/api/scenarios/{FIXTURE}/files/{file}"),
                        Some(&token),
                        sent.as_bytes(),
                    )
                });
                std::thread::sleep(rng.millis(40));
                serve.kill(libc::SIGKILL);
                let acknowledged = matches!(saver.join().unwrap(), Ok((200, _)));
                serve = Serve::start(home);
                let now = serve.file(file);
                let old = model[file].clone();
                if now.as_deref() == Some(content.as_str()) {
                    model.insert(file, Some(content));
                } else if acknowledged || now != old {
                    lost.push(format!(
                        "cycle {cycle}: {file} after a kill mid-save is neither the old nor the new version \
                         (acknowledged: {acknowledged}, {} bytes)",
                        now.map_or(0, |n| n.len())
                    ));
                }
            }
            "reset" => {
                // As the UI does: a running scenario is stopped first (reset refuses otherwise).
                let (code, body) =
                    serve.call("POST", &format!("/api/scenarios/{FIXTURE}/stop"), b"");
                assert_eq!(code, 200, "cycle {cycle}: stop: {body}");
                let (code, body) = serve.call(
                    "POST",
                    &format!("/api/scenarios/{FIXTURE}/reset"),
                    br#"{"database": false}"#,
                );
                assert_eq!(code, 200, "cycle {cycle}: reset: {body}");
                let backup = PathBuf::from(body["backup"].as_str().unwrap());
                for (file, content) in &model {
                    let kept = std::fs::read_to_string(backup.join(file)).ok();
                    if &kept != content {
                        lost.push(format!(
                            "cycle {cycle}: the backup {} lacks the saved {file}",
                            backup.display()
                        ));
                    }
                }
                for file in files {
                    model.insert(
                        file,
                        (file == "src/main.rs").then(|| FIXTURE_MAIN.to_string()),
                    );
                }
            }
            _ => {
                // Save & restart: the saved main.rs is what runs.
                let (code, body) =
                    serve.call("POST", &format!("/api/scenarios/{FIXTURE}/restart"), b"");
                assert_eq!(code, 202, "cycle {cycle}: restart: {body}");
                let deadline = Instant::now() + Duration::from_secs(300);
                let status = loop {
                    let (_, status) =
                        serve.call("GET", &format!("/api/scenarios/{FIXTURE}/status"), b"");
                    if status["state"] != "starting" {
                        break status;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "cycle {cycle}: still starting: {status}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                };
                assert_eq!(status["state"], "running", "cycle {cycle}: {status}");
                let url = status["url"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("http://")
                    .to_string();
                let (_, running) = http(&url, "GET", "/version", None, b"").unwrap();
                let saved = model["src/main.rs"].clone().unwrap();
                assert!(
                    saved.contains(&format!("const VERSION: &str = \"{running}\";")),
                    "cycle {cycle}: runs {running}"
                );
            }
        }
        // Every acknowledged save is what the file holds now.
        for file in files {
            let now = serve.file(file);
            if now != model[file] {
                lost.push(format!(
                    "cycle {cycle} ({op}): {file} holds {} bytes, not the saved {} bytes",
                    now.as_ref().map_or(0, |n| n.len()),
                    model[file].as_ref().map_or(0, |c| c.len())
                ));
                model.insert(file, now);
            }
        }
        case.survived();
    }
    eprintln!("edit cycles: {counts:?}");
    serve.kill(libc::SIGTERM);
    case.lost(lost.len() as u64);
    assert!(lost.is_empty(), "lost: {lost:#?}");
    // No half-written file anywhere: temp files of killed saves hold no one's only copy.
    let left = left_running(home, Duration::from_secs(10));
    assert!(left.is_empty(), "left running: {left:?}");
}

// --- no orphans ---------------------------------------------------------------------------

#[test]
fn quitting_or_killing_sdlab_at_random_points_of_start_load_and_check_leaves_no_process_behind() {
    let mut case = Case::new(
        "no orphans: Ctrl-C/SIGTERM/SIGKILL during start, load and check (t1-06: PostgreSQL, Redis, nginx, three instances)",
    );
    let mut rng = Rng::new("no orphans");
    let home = pg_home();
    let start: &[&str] = &["start", "t1-06"];
    let load: &[&str] = &["load", "t1-06", "--rate", "10", "--duration", "20s"];
    let check: &[&str] = &["check", "t1-06"];
    // (command, signal, killed within, whether it must stop everything itself). Ctrl-C and
    // SIGTERM must stop everything at any point; after SIGKILL the next `sdlab stop` must find
    // and stop what is left.
    let steps: &[(&[&str], i32, u64, bool)] = &[
        (start, libc::SIGTERM, 1500, true),
        (start, libc::SIGINT, 1500, true),
        (start, libc::SIGKILL, 1500, false),
        (load, libc::SIGINT, 3000, true),
        (load, libc::SIGKILL, 3000, false),
        (load, libc::SIGTERM, 3000, true),
        (check, libc::SIGINT, 4000, true),
        (check, libc::SIGKILL, 4000, false),
        (check, libc::SIGTERM, 4000, true),
        (start, libc::SIGKILL, 800, false),
    ];
    for (args, sig, within, by_itself) in steps {
        let mut child = sdlab(&home)
            .args(*args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let after = rng.millis(*within);
        std::thread::sleep(after);
        kill(child.id(), *sig);
        let waited = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "{args:?} did not exit after signal {sig}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{args:?}: signal {sig} after {after:?}");
        if *by_itself {
            let left = left_running(&home, Duration::from_secs(15));
            assert!(
                left.is_empty(),
                "{args:?} stopped by signal {sig} after {after:?} left running: {left:?}"
            );
        } else {
            let mut stop = sdlab(&home);
            stop.args(["stop", "t1-06"]);
            let (code, out) = sdlab_output(stop, Duration::from_secs(60));
            assert_eq!(code, 0, "{out}");
            let left = left_running(&home, Duration::from_secs(15));
            assert!(
                left.is_empty(),
                "after {args:?} got signal {sig} and `sdlab stop`, left running: {left:?}"
            );
        }
        case.survived();
    }
    // After SIGKILL, the next start cleans up and works; its stop leaves nothing.
    let (mut child, _, url) = start_watched(sdlab(&home), "t1-06");
    let (code, _) = http(
        url.trim_start_matches("http://"),
        "GET",
        "/healthz",
        None,
        b"",
    )
    .unwrap();
    assert_eq!(code, 200);
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    let left = left_running(&home, Duration::from_secs(15));
    assert!(left.is_empty(), "left running: {left:?}");
    case.survived();
}

/// The fixture `t2-96`: t2-99's service with a PostgreSQL and a streaming replica (the service
/// answers `/replica-url` with the `DATABASE_REPLICA_URL` it was given).
fn replica_fixture_sources() -> PathBuf {
    const DIR: &str = "t2-96-replica-fixture";
    let toml = FIXTURE_TOML
        .replace("id = \"t2-99\"", "id = \"t2-96\"")
        .replace("HINTS", "\"A hint.\"")
        .replace(
            "[topology]\ninstances = 1\n",
            "[topology]\ninstances = 1\n\n[topology.postgres]\ndatabase = \"reads\"\nreplicas = 1\nreplica_apply_delay = \"500ms\"\n\n[db]\nschema = \"db/schema.sql\"\n",
        )
        .replace(
            "oracle = { status = [200], hint = \"Hello.\" }",
            "oracle = { sql = \"SELECT $3 = 200\", hint = \"Hello.\" }",
        );
    let root = fixture_sources("reliability-replica-src", &[(DIR, &toml)]);
    let dir = root.join("scenarios").join(DIR);
    write_if_changed(
        &dir.join("db/schema.sql"),
        b"CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n",
    );
    write_if_changed(
        &dir.join("SCENARIO.md"),
        b"# Replica fixture\n\nA service with a replica.\n",
    );
    for code in ["service", "solution"] {
        let manifest = format!(
            "[package]\nname = \"scenario-t2-96-{code}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n"
        );
        write_if_changed(&dir.join(code).join("Cargo.toml"), manifest.as_bytes());
        write_if_changed(&dir.join(code).join("src/main.rs"), FIXTURE_MAIN.as_bytes());
    }
    root
}

#[test]
fn quitting_or_killing_sdlab_with_a_streaming_replica_leaves_no_process_behind() {
    let mut case = Case::new(
        "no orphans, replica: SIGTERM/SIGINT/SIGKILL during start of a scenario with a streaming replica (t2-96), then a start whose service gets DATABASE_REPLICA_URL",
    );
    let mut rng = Rng::new("no orphans (replica)");
    let home = tests_root().join("reliability-replica-home");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sources = replica_fixture_sources();
    let lab = |home: &Path| {
        let mut cmd = sdlab(home);
        cmd.env("SDLAB_ROOT", &sources);
        cmd
    };
    // The first start seeds, copies the replica and builds: do it once, untimed.
    let (mut child, _, _) = start_watched(lab(&home), "t2-96");
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    assert!(left_running(&home, Duration::from_secs(15)).is_empty());
    let steps: &[(i32, u64, bool)] = &[
        (libc::SIGTERM, 2500, true),
        (libc::SIGINT, 2500, true),
        (libc::SIGKILL, 2500, false),
        (libc::SIGKILL, 1200, false),
    ];
    for &(sig, within, by_itself) in steps {
        let mut child = lab(&home)
            .args(["start", "t2-96"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let after = rng.millis(within);
        std::thread::sleep(after);
        kill(child.id(), sig);
        let waited = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "start did not exit after signal {sig}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("start: signal {sig} after {after:?}");
        if !by_itself {
            let mut stop = lab(&home);
            stop.args(["stop", "t2-96"]);
            let (code, out) = sdlab_output(stop, Duration::from_secs(60));
            assert_eq!(code, 0, "{out}");
        }
        let left = left_running(&home, Duration::from_secs(15));
        assert!(
            left.is_empty(),
            "start stopped by signal {sig} after {after:?} left running: {left:?}"
        );
        case.survived();
    }
    // SIGKILL once everything runs (the replica streaming): `sdlab stop` finds the replica
    // in the run state's cluster and stops it with the rest.
    let (mut child, _, _) = start_watched(lab(&home), "t2-96");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("run/t2-96.json")).unwrap()).unwrap();
    let replica_pid = state["replica_pid"].as_u64().unwrap() as u32;
    kill(child.id(), libc::SIGKILL);
    let _ = child.wait();
    assert!(
        alive(replica_pid),
        "pg_ctl daemonizes the replica: it outlives a SIGKILL"
    );
    let mut stop = lab(&home);
    stop.args(["stop", "t2-96"]);
    let (code, out) = sdlab_output(stop, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    assert!(gone_within(replica_pid, Duration::from_secs(10)));
    let left = left_running(&home, Duration::from_secs(15));
    assert!(
        left.is_empty(),
        "after SIGKILL and `sdlab stop`, left running: {left:?}"
    );
    case.survived();
    // The next start works: the service has the replica's URL (its role, its database, the
    // replica's port from the run state); a SIGTERM then leaves nothing.
    let (mut child, _, url) = start_watched(lab(&home), "t2-96");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("run/t2-96.json")).unwrap()).unwrap();
    let replica_admin = state["replica_url"].as_str().unwrap().to_string();
    let replica_port = replica_admin
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let (code, body) = http(
        url.trim_start_matches("http://"),
        "GET",
        "/replica-url",
        None,
        b"",
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(
        body.starts_with("postgresql://app:")
            && body.ends_with(&format!("127.0.0.1:{replica_port}/reads")),
        "DATABASE_REPLICA_URL {body:?}, replica {replica_admin}"
    );
    let mut sql = lab(&home);
    sql.args([
        "sql",
        "t2-96",
        "--replica",
        "insert into items (name) values ('x')",
    ]);
    let (code, out) = sdlab_output(sql, Duration::from_secs(60));
    assert_ne!(code, 0);
    assert!(out.contains("read-only transaction"), "{out}");
    let mut delay = lab(&home);
    delay.args(["replica", "t2-96", "--delay", "2s"]);
    let (code, out) = sdlab_output(delay, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("apply delay 2000 ms"), "{out}");
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    let left = left_running(&home, Duration::from_secs(15));
    assert!(left.is_empty(), "left running: {left:?}");
    case.survived();
}

/// The fixture `t2-95`: t2-99's service with a PostgreSQL (a lab records its run state only
/// when it owns a database) and two workers, the same binary with `SDLAB_ROLE=worker` (the
/// service answers `/role` with it).
fn worker_fixture_sources() -> PathBuf {
    const DIR: &str = "t2-95-worker-fixture";
    let toml = FIXTURE_TOML
        .replace("id = \"t2-99\"", "id = \"t2-95\"")
        .replace("HINTS", "\"A hint.\"")
        .replace(
            "[topology]\ninstances = 1\n",
            "[topology]\ninstances = 1\n\n[topology.workers]\ncount = 2\n\n[topology.redis]\npersistence = true\n\n[topology.postgres]\ndatabase = \"work\"\n\n[db]\nschema = \"db/schema.sql\"\n",
        )
        .replace(
            "oracle = { status = [200], hint = \"Hello.\" }",
            "oracle = { sql = \"SELECT $3 = 200\", hint = \"Hello.\" }",
        );
    let root = fixture_sources("reliability-worker-src", &[(DIR, &toml)]);
    let dir = root.join("scenarios").join(DIR);
    write_if_changed(
        &dir.join("db/schema.sql"),
        b"CREATE TABLE jobs (id bigserial PRIMARY KEY);\n",
    );
    write_if_changed(
        &dir.join("SCENARIO.md"),
        b"# Worker fixture\n\nA service with workers.\n",
    );
    for code in ["service", "solution"] {
        let manifest = format!(
            "[package]\nname = \"scenario-t2-95-{code}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n"
        );
        write_if_changed(&dir.join(code).join("Cargo.toml"), manifest.as_bytes());
        write_if_changed(&dir.join(code).join("src/main.rs"), FIXTURE_MAIN.as_bytes());
    }
    root
}

/// The pids and ports the run state lists under `field` (`services` or `workers`).
fn state_processes(home: &Path, id: &str, field: &str) -> Vec<(u32, u16)> {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join(format!("run/{id}.json"))).unwrap())
            .unwrap();
    state[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pid"].as_u64().unwrap() as u32,
                p["port"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

#[test]
fn quitting_or_killing_sdlab_with_workers_leaves_no_worker_behind_and_a_reset_empties_its_queue() {
    let mut case = Case::new(
        "no orphans, workers: SIGTERM/SIGKILL during start of a scenario with two workers and a persistent Redis (t2-95), SIGKILL once they run, then a start whose workers get SDLAB_ROLE=worker; its queue survives a restart and a reset empties it",
    );
    let mut rng = Rng::new("no orphans (workers)");
    let home = tests_root().join("reliability-worker-home");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sources = worker_fixture_sources();
    let lab = |home: &Path| {
        let mut cmd = sdlab(home);
        cmd.env("SDLAB_ROOT", &sources);
        cmd
    };
    // The first start seeds and builds: once, untimed. The workers answer as workers, the
    // instance as the web role.
    let (mut child, _, url) = start_watched(lab(&home), "t2-95");
    let workers = state_processes(&home, "t2-95", "workers");
    assert_eq!(workers.len(), 2, "two workers in the run state");
    for (pid, port) in &workers {
        assert!(alive(*pid));
        let (code, body) = http(&format!("127.0.0.1:{port}"), "GET", "/role", None, b"").unwrap();
        assert_eq!((code, body.as_str()), (200, "worker"));
    }
    let (code, body) = http(url.trim_start_matches("http://"), "GET", "/role", None, b"").unwrap();
    assert_eq!((code, body.as_str()), (200, "web"));
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    for (pid, _) in &workers {
        assert!(
            gone_within(*pid, Duration::from_secs(10)),
            "worker {pid} outlived a stop"
        );
    }
    assert!(left_running(&home, Duration::from_secs(15)).is_empty());
    // Signals at random moments of a start (the workers start last).
    for &(sig, within) in &[(libc::SIGTERM, 2500), (libc::SIGKILL, 2500)] {
        let mut child = lab(&home)
            .args(["start", "t2-95"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let after = rng.millis(within);
        std::thread::sleep(after);
        kill(child.id(), sig);
        let waited = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "start did not exit after signal {sig}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if sig == libc::SIGKILL {
            let mut stop = lab(&home);
            stop.args(["stop", "t2-95"]);
            let (code, out) = sdlab_output(stop, Duration::from_secs(60));
            assert_eq!(code, 0, "{out}");
        }
        let left = left_running(&home, Duration::from_secs(15));
        assert!(
            left.is_empty(),
            "start stopped by signal {sig} after {after:?} left running: {left:?}"
        );
        case.survived();
    }
    // SIGKILL once the workers run: they die with the lab, and `sdlab stop` leaves nothing.
    let (mut child, _, _) = start_watched(lab(&home), "t2-95");
    let workers = state_processes(&home, "t2-95", "workers");
    kill(child.id(), libc::SIGKILL);
    let _ = child.wait();
    for (pid, _) in &workers {
        assert!(
            gone_within(*pid, Duration::from_secs(10)),
            "worker {pid} outlived its lab's SIGKILL"
        );
    }
    let mut stop = lab(&home);
    stop.args(["stop", "t2-95"]);
    let (code, out) = sdlab_output(stop, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    let left = left_running(&home, Duration::from_secs(15));
    assert!(
        left.is_empty(),
        "after SIGKILL and `sdlab stop`, left running: {left:?}"
    );
    case.survived();

    // The queue: this fixture's Redis keeps its data (`persistence = true`), so an entry
    // survives a stop and a start; `sdlab reset` empties it.
    let redis = |command: &str| {
        let mut cmd = lab(&home);
        cmd.args(["redis", "t2-95", command]);
        let (code, out) = sdlab_output(cmd, Duration::from_secs(60));
        assert_eq!(code, 0, "{command}: {out}");
        out.trim().to_string()
    };
    let stop = || {
        let mut cmd = lab(&home);
        cmd.args(["stop", "t2-95"]);
        let (code, out) = sdlab_output(cmd, Duration::from_secs(60));
        assert_eq!(code, 0, "{out}");
    };
    let (child, _, _) = start_watched(lab(&home), "t2-95");
    redis("XADD orders * order 1");
    assert_eq!(redis("XLEN orders"), "(integer) 1");
    stop();
    let _ = { child }.wait();
    let (child, _, _) = start_watched(lab(&home), "t2-95");
    assert_eq!(
        redis("XLEN orders"),
        "(integer) 1",
        "the persistent queue lost its entry across a restart"
    );
    stop();
    let _ = { child }.wait();
    let mut reset = lab(&home);
    reset.args(["reset", "t2-95", "--yes"]);
    let (code, out) = sdlab_output(reset, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}");
    let (child, _, _) = start_watched(lab(&home), "t2-95");
    assert_eq!(
        redis("XLEN orders"),
        "(integer) 0",
        "a reset left the queue's entries"
    );
    stop();
    let _ = { child }.wait();
    assert!(left_running(&home, Duration::from_secs(15)).is_empty());
}

// --- data safety --------------------------------------------------------------------------

#[test]
fn postgresql_killed_with_the_lab_recovers_on_the_next_start() {
    let mut case =
        Case::new("data safety: SIGKILL of the lab and PostgreSQL together, then start (t1-01)");
    let home = pg_home();
    let (child, _, _) = start_watched(sdlab(&home), "t1-01");
    let (owner, postmaster, _) = run_state(&home);
    // A power cut: the lab and the database server die at the same instant.
    kill(postmaster, libc::SIGKILL);
    kill(owner, libc::SIGKILL);
    let _ = { child }.wait();
    assert!(gone_within(postmaster, Duration::from_secs(10)));
    let (mut child, _, _) = start_watched(sdlab(&home), "t1-01");
    let mut sql = sdlab(&home);
    sql.args([
        "sql",
        "t1-01",
        "select count(*) >= 1000000 as seeded from posts",
    ]);
    let (code, out) = sdlab_output(sql, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" t"), "the seeded rows are back: {out}");
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    let left = left_running(&home, Duration::from_secs(15));
    assert!(left.is_empty(), "left running: {left:?}");
    case.survived();
}

#[test]
fn progress_json_survives_sdlab_killed_while_saving_it() {
    let mut case = Case::new("data safety: progress.json with sdlab killed mid-write (40 tries)");
    let mut rng = Rng::new("progress");
    let home = fresh_home();
    let home = home.path();
    let progress = home.join("progress.json");
    let mut shown = 0;
    for _ in 0..40 {
        let mut child = lab(home)
            .args(["hint", FIXTURE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        kill(child.id(), libc::SIGKILL);
        let _ = child.wait();
        if progress.exists() {
            let bytes = std::fs::read(&progress).unwrap();
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "progress.json is corrupt after a kill ({e}): {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            let now = value["scenarios"][FIXTURE]["hints_shown"]
                .as_u64()
                .unwrap_or(0);
            assert!(now >= shown, "hints seen went back from {shown} to {now}");
            shown = now;
        }
        case.survived();
    }
    let mut list = lab(home);
    list.arg("list");
    let (code, out) = sdlab_output(list, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}");
    eprintln!("hints recorded through 40 killed runs: {shown}");
}

// --- bad environment ----------------------------------------------------------------------

#[test]
fn a_broken_environment_gives_an_actionable_message_and_the_lab_stays_usable() {
    let mut case = Case::new("bad environment: no PostgreSQL, no nginx, unusable home, corrupt scenario.toml, stale state");
    let home = fresh_home();
    let home = home.path();

    // No PostgreSQL binaries anywhere.
    let mut cmd = sdlab(home);
    cmd.args(["start", "t1-01"])
        .env("SDLAB_PG_BIN", "/nonexistent/pg/bin")
        .env("SDLAB_PG_NO_SYSTEM", "1")
        .env("SDLAB_PG_NO_DOWNLOAD", "1");
    let (code, out) = sdlab_output(cmd, Duration::from_secs(120));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("were not found")
            && out.contains("/nonexistent/pg/bin")
            && out.contains("apt-get install"),
        "{out}"
    );
    assert!(left_running(home, Duration::from_secs(5)).is_empty());
    case.survived();

    // No nginx: said before anything is started or seeded.
    let mut cmd = sdlab(home);
    cmd.args(["start", "t1-04"])
        .env("SDLAB_NGINX_BIN", "/nonexistent/nginx");
    let (code, out) = sdlab_output(cmd, Duration::from_secs(120));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("nginx is not installed") && out.contains("apt-get install nginx"),
        "{out}"
    );
    assert!(
        !home.join("postgres").exists() || left_running(home, Duration::from_secs(5)).is_empty()
    );
    case.survived();

    // A lab home that cannot be created (a file is in the way).
    let blocker = home.join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let mut cmd = lab(&blocker.join("home"));
    cmd.args(["start", FIXTURE]);
    let (code, out) = sdlab_output(cmd, Duration::from_secs(120));
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&blocker.display().to_string()),
        "the message names the path: {out}"
    );
    case.survived();

    // A hand-edited scenario.toml: that scenario says what is wrong, the others still work.
    let broken = FIXTURE_TOML
        .replace("id = \"t2-99\"", "id = \"t2-98\"")
        .replace("HINTS", "\"A hint.\"")
        .replace("minutes = 1", "minutes = \"ten\"");
    let sources = fixture_sources("reliability-src-broken", &[("t2-98-hand-edited", &broken)]);
    let with_broken = |args: &[&str]| {
        let mut cmd = sdlab(home);
        cmd.env("SDLAB_ROOT", &sources).args(args);
        sdlab_output(cmd, Duration::from_secs(120))
    };
    let (code, out) = with_broken(&["list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("t2-99"), "{out}");
    let (code, out) = with_broken(&["start", "t2-98"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("t2-98-hand-edited/scenario.toml") && out.contains("minutes"),
        "{out}"
    );
    let (code, out) = with_broken(&["hint", "t2-99"]);
    assert_eq!(code, 0, "{out}");
    case.survived();

    // A stale run state naming live processes that are not the lab's (pids reused after a
    // crash): the start must not touch them.
    let mut bystander = Command::new("sleep").arg("60").spawn().unwrap();
    let state = serde_json::json!({
        "scenario": FIXTURE, "owner_pid": 1, "owner_start_time": 1, "postgres_url": null,
        "postmaster_pid": null,
        "services": [{ "pid": bystander.id(), "start_time": 1, "port": 1, "instance": 1 }],
    });
    std::fs::create_dir_all(home.join("run")).unwrap();
    std::fs::write(home.join(format!("run/{FIXTURE}.json")), state.to_string()).unwrap();
    let (mut child, _, _) = start_watched(lab(home), FIXTURE);
    kill(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    assert!(
        alive(bystander.id()),
        "the start killed a process that only reused a recorded pid"
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
    case.survived();

    // `sdlab serve --port N` with N taken serves on another port and says so.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut child = lab(home)
        .args(["serve", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = line_channel(child.stdout.take().unwrap());
    let err = line_channel(child.stderr.take().unwrap());
    let line = out.recv_timeout(Duration::from_secs(60)).unwrap();
    kill(child.id(), libc::SIGTERM);
    let _ = child.wait();
    let said: Vec<String> = err.try_iter().collect();
    assert!(
        line.starts_with("serving http://127.0.0.1:") && !line.contains(&format!(":{port}/")),
        "{line}"
    );
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("Port {port} is in use"))),
        "{said:?}"
    );
    case.survived();
}

#[test]
fn a_full_disk_fails_the_save_with_a_message_and_keeps_the_previous_version() {
    let mut case = Case::new("bad environment: disk full while saving (tmpfs of 2 MiB)");
    let dir = tempfile::Builder::new()
        .prefix("sdlab-full-")
        .tempdir_in("/tmp")
        .unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // Not root or no mount permission (a container): nothing to simulate with here.
        eprintln!("cannot mount a small tmpfs here; the disk-full case is not run");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    let serve = Serve::start(dir.path());
    let first = "first version\n".repeat(1000);
    assert_eq!(
        serve
            .call(
                "PUT",
                &format!("/api/scenarios/{FIXTURE}/files/notes.md"),
                first.as_bytes()
            )
            .0,
        200
    );
    // Fill the disk.
    let filler = vec![0u8; 4 << 20];
    let _ = std::fs::write(dir.path().join("filler"), &filler);
    let big = "x".repeat(900_000);
    let (code, body) = serve.call(
        "PUT",
        &format!("/api/scenarios/{FIXTURE}/files/notes.md"),
        big.as_bytes(),
    );
    assert!(code >= 500, "a save on a full disk reported {code}: {body}");
    let message = body["error"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("No space left on device") && message.contains("notes.md"),
        "{body}"
    );
    assert_eq!(
        serve.file("notes.md").as_deref(),
        Some(first.as_str()),
        "the previous version is intact"
    );
    // Space again: the lab is usable without a restart.
    std::fs::remove_file(dir.path().join("filler")).unwrap();
    assert_eq!(
        serve
            .call(
                "PUT",
                &format!("/api/scenarios/{FIXTURE}/files/notes.md"),
                big.as_bytes()
            )
            .0,
        200
    );
    serve.kill(libc::SIGTERM);
    case.survived();
}
