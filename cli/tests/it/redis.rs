//! `[topology.redis]` on real processes: `sdlab start` of a fixture scenario with a tiny
//! PostgreSQL and a Redis starts a real redis-server beside it (its maxmemory and policy from
//! scenario.toml), gives every instance `REDIS_URL`, `sdlab redis` reaches it by the run state,
//! and the server dies with the lab: on `sdlab stop`, and when `sdlab` is SIGKILLed (then the
//! next start finds nothing of it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;
use crate::reliability::{fixture_sources, write_if_changed, FIXTURE_MAIN};

const ID: &str = "t2-97";
const FOLDER: &str = "t2-97-redis-fixture";

const TOML: &str = r#"
id = "t2-97"
title = "Redis fixture"
track = 2
stage = "crawling"
concepts = ["testing"]
minutes = 1
hints = ["h"]

[topology]
instances = 2

[topology.postgres]
database = "redisfix"

[topology.redis]
maxmemory = "2mb"
policy = "allkeys-lru"

[db]
schema = "db/schema.sql"

[[requests]]
name = "hello"
method = "GET"
path = "/"
oracle = { sql = "SELECT $3 = 200", hint = "Hello." }

[profiles.check]
description = "A few requests."
timeout = "1s"
stages = [{ duration = "2s", rate = 10 }]
mix = { hello = 1 }

[check]
profile = "check"

[[check.slo]]
metric = "error_rate"
max = 0.01
hint = "Errors."
"#;

/// The reliability fixture's sources plus the Redis fixture scenario (the same std-only
/// service: what is tested is what the lab gives it).
fn sources() -> PathBuf {
    let root = fixture_sources("redis-src", &[(FOLDER, TOML)]);
    let dir = root.join("scenarios").join(FOLDER);
    write_if_changed(
        &dir.join("db/schema.sql"),
        b"CREATE TABLE t (id int PRIMARY KEY);\n",
    );
    for code in ["service", "solution"] {
        let manifest = format!(
            "[package]\nname = \"scenario-t2-97-{code}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n"
        );
        write_if_changed(&dir.join(code).join("Cargo.toml"), manifest.as_bytes());
        write_if_changed(&dir.join(code).join("src/main.rs"), FIXTURE_MAIN.as_bytes());
    }
    root
}

fn lab(home: &Path) -> std::process::Command {
    let mut cmd = sdlab(home);
    cmd.env("SDLAB_ROOT", sources());
    cmd
}

fn redis_cmd(home: &Path, command: &str) -> (i32, String, String) {
    let mut cmd = lab(home);
    cmd.args(["redis", ID, command]);
    let out = run(cmd, Duration::from_secs(60));
    let (stdout, stderr) = text(&out);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The redis-server processes running in this lab home's run dir (by working directory).
fn redis_servers(home: &Path) -> Vec<u32> {
    let dir = home.join("run").join(format!("redis-{ID}"));
    processes_mentioning("redis-server")
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .ok()
                .as_deref()
                == Some(&dir)
        })
        .collect()
}

fn environ(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
        .replace('\0', "\n")
}

#[test]
fn a_scenario_with_redis_gets_a_real_server_that_its_instances_share_and_that_dies_with_the_lab() {
    let home = fresh_home();
    let home = home.path();
    // Nothing runs yet: the console says how to get a Redis.
    let (code, _, err) = redis_cmd(home, "PING");
    assert_eq!(code, 1);
    assert!(
        err.contains("no Redis running") && err.contains("sdlab start t2-97"),
        "{err}"
    );

    let mut started = {
        let mut cmd = lab(home);
        cmd.arg("start").arg(ID);
        start_command(cmd, ID)
    };
    let servers = redis_servers(home);
    assert_eq!(
        servers.len(),
        1,
        "one redis-server for the lab: {servers:?}"
    );
    let note = step_lines(&started.stderr)
        .into_iter()
        .find(|l| l.contains("redis-server (pid"))
        .unwrap_or_default();
    assert!(note.contains("maxmemory 2 MiB, allkeys-lru"), "{note}");

    // Both instances got the same REDIS_URL, and it is the server that runs.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join(format!("run/{ID}.json"))).unwrap())
            .unwrap();
    let url = state["redis_url"].as_str().unwrap().to_string();
    assert!(url.starts_with("redis://127.0.0.1:"), "{url}");
    let instances = state["services"].as_array().unwrap();
    assert_eq!(instances.len(), 2);
    for s in instances {
        let env = environ(s["pid"].as_u64().unwrap() as u32);
        assert!(
            env.lines().any(|l| l == format!("REDIS_URL={url}")),
            "{env}"
        );
    }

    // The console: commands, replies as redis-cli prints them, the scenario's settings live.
    assert_eq!(redis_cmd(home, "PING").1, "PONG\n");
    assert_eq!(redis_cmd(home, "SET \"a key\" 'v 1'").1, "OK\n");
    assert_eq!(redis_cmd(home, "GET \"a key\"").1, "\"v 1\"\n");
    assert_eq!(redis_cmd(home, "GET missing").1, "(nil)\n");
    let policy = redis_cmd(home, "CONFIG GET maxmemory-policy").1;
    assert_eq!(policy, "1) \"maxmemory-policy\"\n2) \"allkeys-lru\"\n");
    let info = redis_cmd(home, "INFO memory").1;
    assert!(info.contains("maxmemory:2097152"), "{info}");
    let (code, out, _) = redis_cmd(home, "NOSUCHCOMMAND");
    assert_eq!(code, 0);
    assert!(out.starts_with("(error) ERR unknown command"), "{out}");
    // The live line samples INFO every second: hits, memory against maxmemory, evictions.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let live = loop {
        let found = step_lines(&started.stderr)
            .into_iter()
            .find(|l| l.contains("redis hit") && l.contains("/2.0 MiB"));
        match found {
            Some(l) => break l,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            None => panic!(
                "no Redis in the live line: {:?}",
                step_lines(&started.stderr)
            ),
        }
    };
    assert!(
        live.contains("OOM 0") && live.contains("evicted/s"),
        "{live}"
    );

    // sdlab stop: Redis stops with the lab.
    let mut stop = lab(home);
    stop.args(["stop", ID]);
    assert!(run(stop, Duration::from_secs(60)).status.success());
    let _ = started.child.wait();
    assert!(
        servers
            .iter()
            .all(|&pid| gone_within(pid, Duration::from_secs(10))),
        "redis-server outlived sdlab stop"
    );

    // SIGKILL of sdlab: its Redis goes too (PDEATHSIG), and the next start runs one, fresh.
    let mut started = {
        let mut cmd = lab(home);
        cmd.arg("start").arg(ID);
        start_command(cmd, ID)
    };
    assert_eq!(
        redis_cmd(home, "GET \"a key\"").1,
        "(nil)\n",
        "a cache starts empty"
    );
    let servers = redis_servers(home);
    assert_eq!(servers.len(), 1);
    kill(started.child.id(), libc::SIGKILL);
    let _ = started.child.wait();
    assert!(
        gone_within(servers[0], Duration::from_secs(10)),
        "redis-server outlived a SIGKILLed sdlab"
    );
}
