//! Scenario t1-03 beyond its fixes/ (which the golden test runs, with the margins in their
//! `about` lines): an instance killed during the check shows as down in the check table.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;

const ID: &str = "t1-03";

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
