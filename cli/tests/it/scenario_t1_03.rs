//! Golden tests of scenario t1-03: the broken job queue (3 instances x 20 connections against
//! max_connections 30, an acquire timeout of an hour, a worker holding its transaction across
//! the 250 ms payments call) fails with the guide's symptoms; the solution and another
//! budget pass; the named wrong fix (pools that fit, connection still held across the call)
//! fails on errors and throughput; a killed instance shows as down in the check table.
//!
//! Margins, measured on the 2-core reference machine: the broken service times out ~19% of
//! requests and PostgreSQL refuses thousands of connections (line at 0); the wrong fix fails
//! ~44-58% of requests with 503 and serves ~120-170 of ~290 requests/s (line at 95%); the
//! solution has no errors and a p99 of ~270 ms (line at 2 s; 1.8 s once while other builds
//! starved the machine). Pool budgets and refusals are counts, not timings.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;

const ID: &str = "t1-03";

fn dir() -> std::path::PathBuf {
    scenario_dir_of("t1-03-connection-pooling")
}

fn check_code(code: &Path) -> (i32, String) {
    let (code, table, _) = check_scenario(&shared_home(), ID, &["--code", code.to_str().unwrap()]);
    (code, table)
}

const REFUSED: &str = "connections refused by PostgreSQL";

#[test]
fn broken_queue_hangs_requests_and_overruns_max_connections() {
    let (code, table) = check_code(&dir().join("service"));
    assert_eq!(code, 1, "the broken service must fail the check");
    // Hung requests: the client's timeout, not a 503 (the pool waits an hour).
    let errors = table_line(&table, "error rate");
    assert!(
        errors.ends_with("FAIL") && errors.contains("timeout"),
        "{errors}"
    );
    assert!(!passes(&table, "p99 latency"), "{table}");
    // 3 x 20 read from the running instances' /metrics.
    let budget = table_line(&table, "pool budget");
    assert!(
        budget.contains("60 = 20 + 20 + 20") && budget.ends_with("FAIL"),
        "{budget}"
    );
    // PostgreSQL's own "too many clients" refusals, counted in its log.
    let refused = table_line(&table, REFUSED);
    let count: u64 = refused
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or(0);
    assert!(count > 0 && refused.ends_with("FAIL"), "{refused}");
    assert!(
        passes(&table, "instances up"),
        "all instances stay up: {table}"
    );
    assert!(table.contains("Hints:"), "{table}");
}

#[test]
fn solution_passes_every_line() {
    let (code, table, _) = check_scenario(&shared_home(), ID, &["--solution"]);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("PASS: 7 of 7 lines pass"), "{table}");
    assert!(
        table_line(&table, "pool budget").contains("24 = 8 + 8 + 8"),
        "{table}"
    );
}

#[test]
fn a_smaller_budget_with_a_longer_timeout_passes_too() {
    // 3 x 4 connections and a 1 s acquire timeout: once no handler holds a connection across
    // the payments call, 4 per instance are plenty (Little's law: ~0.3 busy on average).
    let code_dir = variant_of(&dir().join("solution"));
    let main = code_dir.path().join("src/main.rs");
    edit(&main, "max_connections: 8,", "max_connections: 4,");
    edit(
        &main,
        "Duration::from_millis(500)",
        "Duration::from_secs(1)",
    );
    let (code, table) = check_code(code_dir.path());
    assert_eq!(code, 0, "{table}");
    assert!(
        table_line(&table, "pool budget").contains("12 = 4 + 4 + 4"),
        "{table}"
    );
}

#[test]
fn pools_within_budget_still_fail_while_the_worker_holds_its_connection() {
    // The tempting half-fix: the solution's pool settings (3 x 8, 500 ms) with the broken
    // handler that keeps its transaction open across the charge. Budget and refusals pass;
    // 24 connections held 250 ms each serve ~96 jobs/s of the 150 asked, the rest get 503.
    let code_dir = variant_of(&dir().join("service"));
    std::fs::copy(
        dir().join("solution/src/main.rs"),
        code_dir.path().join("src/main.rs"),
    )
    .unwrap();
    let (code, table) = check_code(code_dir.path());
    assert_eq!(code, 1, "{table}");
    assert!(passes(&table, "pool budget"), "{table}");
    assert!(passes(&table, REFUSED), "{table}");
    let errors = table_line(&table, "error rate");
    assert!(
        errors.ends_with("FAIL") && errors.contains("http 503"),
        "{errors}"
    );
    assert!(!passes(&table, "successful requests/s"), "{table}");
}

#[test]
fn raising_the_pools_fails_on_the_budget_and_refusals() {
    // The colleague's fix: more connections per pool (and the hold left in place).
    let code_dir = variant_of(&dir().join("service"));
    edit(
        &code_dir.path().join("src/main.rs"),
        "max_connections: 20,",
        "max_connections: 40,",
    );
    let (code, table) = check_code(code_dir.path());
    assert_eq!(code, 1, "{table}");
    assert!(
        table_line(&table, "pool budget").contains("120 = 40 + 40 + 40"),
        "{table}"
    );
    assert!(!passes(&table, REFUSED), "{table}");
}

#[test]
fn a_killed_instance_shows_as_down_in_the_check_table() {
    let home = shared_home();
    let mut child = sdlab(&home)
        .args(["check", ID, "--solution"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = line_channel(child.stderr.take().unwrap());
    // Once the check load runs, kill instance 2 (as an OOM killer or a crash would).
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut killed = None;
    while killed.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("the check load never started")
            });
        if line.starts_with("Check load:") {
            let state: serde_json::Value =
                serde_json::from_slice(&std::fs::read(home.join("run/t1-03.json")).unwrap())
                    .unwrap();
            let services = state["services"].as_array().unwrap();
            assert_eq!(services.len(), 3, "{state}");
            let pid = services[1]["pid"].as_u64().unwrap() as u32;
            std::thread::sleep(Duration::from_secs(3));
            kill(pid, libc::SIGKILL);
            killed = Some(pid);
        }
    }
    // The check ends on its own (no hang on the dead instance) and names it.
    let waited = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if waited.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("the check did not finish after an instance was killed");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut table = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut table).unwrap();
    eprintln!("{table}");
    assert_eq!(status.code(), Some(1), "{table}");
    let up = table_line(&table, "instances up");
    assert!(
        up.contains("2/3") && up.contains("instance 2") && up.ends_with("FAIL"),
        "{up}"
    );
    // Its share of the load was refused at connect, counted as errors, not waited on.
    assert!(
        table_line(&table, "error rate").contains("connect"),
        "{table}"
    );
    assert!(gone_within(killed.unwrap(), Duration::from_secs(5)));
}
