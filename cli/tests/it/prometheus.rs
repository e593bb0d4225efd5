//! Each scenario's generated dashboard against a real Prometheus, run by its golden test
//! (golden.rs) once the fixes are judged, so the solution's build is already there:
//! `sdlab start <id> --fix solution`, `sdlab prometheus <id>` for the configuration (the
//! committed `dashboards/<id>/prometheus.yml` with the running lab's ports), Debian's
//! `prometheus` started on it (its own storage in a temp dir, a free loopback port, 1 s
//! scrapes), a bounded `sdlab load`, and every PromQL query of every panel of the committed
//! `dashboards/<id>/dashboard.json` asked through `/api/v1/query` until each returns a number.
//! Together the scenarios cover the load, PostgreSQL, CPU, up, pool, Redis, replica, workers'
//! scenarios and each scenario's own panels; the engine test `dashboards` checks that every lab
//! series a query names is one the exporter serves.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// Kills a child when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/prometheus");
    if debian.is_file() {
        return debian;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .expect("no prometheus binary: scripts/deps.sh --test installs Debian's")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET on 127.0.0.1:`port` (HTTP/1.0, so the body ends with the connection): status and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The query's result as (labels, value) pairs; numbers only (NaN is no data).
fn query(port: u16, expr: &str) -> Vec<(String, f64)> {
    let Some((200, body)) = get(
        port,
        &format!("/api/v1/query?query={}", percent_encode(expr)),
    ) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["data"]["result"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter_map(|r| {
                    let value: f64 = r["value"][1].as_str()?.parse().ok()?;
                    value.is_finite().then(|| (r["metric"].to_string(), value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A Prometheus configuration without its per-instance targets, and those targets (each a
/// `- targets:` line with its labels), in order.
fn instance_targets(config: &str) -> (String, Vec<String>) {
    let mut rest = String::new();
    let mut targets: Vec<String> = Vec::new();
    let mut in_target = false;
    for line in config.lines() {
        if line
            .trim_start()
            .starts_with("- targets: [\"127.0.0.1:INSTANCE_")
        {
            targets.push(format!("{line}\n"));
            in_target = true;
        } else if in_target && line.starts_with("        ") {
            targets.last_mut().unwrap().push_str(&format!("{line}\n"));
        } else {
            in_target = false;
            rest.push_str(&format!("{line}\n"));
        }
    }
    (rest, targets)
}

/// Every (panel title, query) of a committed dashboard.
fn queries(dashboard: &Path) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dashboard).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in v["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push((
                panel["title"].as_str().unwrap().to_string(),
                target["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Starts scenario `id` with its solution in `home`, scrapes it with a real Prometheus under a
/// bounded load, and fails naming every query of its committed dashboard that got no data.
pub fn every_dashboard_query_returns_data(home: &Path, id: &str) {
    const ANSWER_LIMIT: Duration = Duration::from_secs(40);
    let prometheus = prometheus_binary();
    let home = home.to_path_buf();
    let began = Instant::now();
    let mut cmd = sdlab(&home);
    cmd.args(["start", id, "--fix", "solution"]);
    let started = start_command(cmd, id);
    let lab = Reap(started.child);
    let up_took = began.elapsed();

    // The configuration for the running lab: the committed one with the real ports.
    let out = run(
        {
            let mut c = sdlab(&home);
            c.args(["prometheus", id]);
            c
        },
        Duration::from_secs(30),
    );
    let (config, stderr) = text(&out);
    assert!(out.status.success(), "sdlab prometheus: {stderr}");
    let state: Value =
        serde_json::from_slice(&std::fs::read(home.join(format!("run/{id}.json"))).unwrap())
            .unwrap();
    let mut template = config.replace(
        &format!("127.0.0.1:{}", state["metrics_port"].as_u64().unwrap()),
        "127.0.0.1:LAB_PORT",
    );
    for s in state["services"].as_array().unwrap() {
        template = template.replace(
            &format!("127.0.0.1:{}\"", s["port"].as_u64().unwrap()),
            &format!(
                "127.0.0.1:INSTANCE_{}_PORT\"",
                s["instance"].as_u64().unwrap()
            ),
        );
    }
    let dashboards = repo().join("dashboards").join(id);
    let committed = std::fs::read_to_string(dashboards.join("prometheus.yml")).unwrap();
    // The committed file lists the scenario's own instances; a scenario behind nginx runs as
    // many as the code's instances file says (t1-04's solution: 3 where the scenario ships
    // 1), so the instance targets are compared one by one and the rest as a whole.
    let running = state["services"].as_array().unwrap().len();
    let (template_rest, template_targets) = instance_targets(&template);
    let (committed_rest, committed_targets) = instance_targets(&committed);
    assert_eq!(
        template_rest, committed_rest,
        "sdlab prometheus prints the committed configuration with the running lab's ports"
    );
    assert_eq!(
        template_targets.len(),
        running,
        "one target per running instance:\n{template}"
    );
    for (n, target) in template_targets.iter().enumerate() {
        let expected = committed_targets[0]
            .replace("INSTANCE_1_PORT", &format!("INSTANCE_{}_PORT", n + 1))
            .replace(
                "lab_instance: \"1\"",
                &format!("lab_instance: \"{}\"", n + 1),
            );
        assert_eq!(target, &expected, "instance {}'s target", n + 1);
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let server = Reap(
        Command::new(&prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    // Bounded load (60 req/s, at most 40 s), in a second process as a learner would run it.
    let mut load = sdlab(&home);
    load.args(["load", id, "--rate", "60", "--duration", "40s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let load = Reap(load.spawn().unwrap());

    let mut all = queries(&dashboards.join("dashboard.json"));
    assert!(!all.is_empty(), "{id}'s dashboard has no queries");
    // A panel line for one instance the running code does not start (t1-04's fourth, with
    // the solution's three) has nothing to show: not asked.
    all.retain(|(_, expr)| {
        (running + 1..=8).all(|n| !expr.contains(&format!("lab_instance=\"{n}\"")))
    });
    let mut missing = all.clone();
    let asked = Instant::now();
    while !missing.is_empty() && asked.elapsed() < ANSWER_LIMIT {
        std::thread::sleep(Duration::from_secs(1));
        missing.retain(|(_, expr)| query(port, expr).is_empty());
    }
    let answered_in = asked.elapsed();
    // Series the load alone makes: answered requests were counted by the lab's exporter.
    let ok = query(
        port,
        &format!("sum(sdlab_load_ok_total{{scenario=\"{id}\"}})"),
    );
    drop(load);
    drop(server);
    let stop = run(
        {
            let mut c = sdlab(&home);
            c.args(["stop", id]);
            c
        },
        Duration::from_secs(60),
    );
    drop(lab);
    eprintln!(
        "{id}: lab up in {:.1} s; every query answered in {:.1} s; stop: {}",
        up_took.as_secs_f64(),
        answered_in.as_secs_f64(),
        stop.status
    );
    assert!(
        missing.is_empty(),
        "{id}: queries without data after {:.0} s:\n{}\nprometheus log:\n{}",
        answered_in.as_secs_f64(),
        missing
            .iter()
            .map(|(title, expr)| format!("  {title}: {expr}"))
            .collect::<Vec<_>>()
            .join("\n"),
        tail(
            &std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default(),
            20
        )
    );
    assert!(
        ok.first().is_some_and(|(_, n)| *n > 0.0),
        "answered: {ok:?}"
    );
}
