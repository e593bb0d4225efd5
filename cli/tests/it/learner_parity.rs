//! The terminal and the window follow the same learner rules (`sdlab_engine::learner`): this
//! drives the `sdlab` binary and the HTTP API (its router, in-process) on one lab home and
//! shows each sees what the other did: hints continue from either, the solution is asked for
//! once, a reset is refused by both while a lab process holds the scenario, and load runs and
//! checks from the terminal are in the window's history and progress.
//!
//! The reliability suite's fixture scenario (`t2-99`, a std-only HTTP service that builds in
//! seconds, no PostgreSQL, 60 hints) keeps it cheap; its sources live at
//! <tests root>/learner-src (`harness::tests_root`, a stable path, so builds stay incremental).

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use sdlab_engine::api::{self, ApiState};
use sdlab_engine::process::{self, RunState};
use sdlab_engine::{Lab, LabHome, Sources};
use serde_json::Value;
use tower::ServiceExt;

use crate::harness::*;
use crate::reliability::{self, FIXTURE, FIXTURE_DIR, FIXTURE_MAIN};

const PORT: u16 = 45124;
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The reliability suite's fixture scenario in a sources tree of its own, with solution notes.
fn fixture_sources() -> PathBuf {
    let root = reliability::fixture_sources("learner-src", &[]);
    reliability::write_if_changed(
        &root
            .join("scenarios")
            .join(FIXTURE_DIR)
            .join("solution/SOLUTION.md"),
        b"# The fixture's solution\n\nIt was never broken.\n",
    );
    root
}

/// `sdlab <args>` on the fixture: exit code, stdout, stderr.
fn sdlab_on(home: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = sdlab(home);
    cmd.env("SDLAB_ROOT", fixture_sources()).args(args);
    let out = run(cmd, Duration::from_secs(300));
    let (stdout, stderr) = text(&out);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The API over the same home and sources, as `sdlab serve` and the desktop app run it.
struct Window {
    app: Router,
    runtime: tokio::runtime::Runtime,
}

impl Window {
    fn new(home: &Path) -> Window {
        let lab = Lab::new(
            LabHome::at(home).with_target_dir(repo().join("target/sdlab-services")),
            Sources::at(fixture_sources()),
        )
        .unwrap();
        Window {
            app: api::router(ApiState::new(lab, TOKEN, PORT).unwrap()),
            runtime: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn call(&self, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(format!("/api/scenarios/{FIXTURE}{path}"))
            .header("host", format!("127.0.0.1:{PORT}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.runtime.block_on(async {
            let response = self.app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }
}

#[test]
fn the_terminal_and_the_window_follow_the_same_learner_rules() {
    let home = fresh_home();
    let home = home.path();
    let window = Window::new(home);

    // Hints continue from either side.
    sdlab_on(home, &["hint", FIXTURE]);
    let (code, second, _) = sdlab_on(home, &["hint", FIXTURE]);
    assert_eq!(code, 0);
    assert!(
        second.contains("Hint 1 of 60 (seen)") && second.contains("Hint 2 of 60: Hint number 2."),
        "{second}"
    );
    let (_, hints) = window.call("GET", "/hints", "");
    assert_eq!(hints["shown"].as_array().unwrap().len(), 2, "{hints}");
    let (_, hints) = window.call("POST", "/hints/next", "");
    assert_eq!(hints["shown"][2], "Hint number 3.");
    let (_, next, _) = sdlab_on(home, &["hint", FIXTURE]);
    assert!(
        next.contains("Hint 3 of 60 (seen)") && next.contains("Hint 4 of 60: Hint number 4."),
        "{next}"
    );
    for _ in 4..60 {
        window.call("POST", "/hints/next", "");
    }
    let (_, last, _) = sdlab_on(home, &["hint", FIXTURE]);
    assert!(
        last.contains("Hint 60 of 60 (seen)") && last.contains("That is the last hint"),
        "{last}"
    );

    // The solution: both ask before the first check; once revealed, neither asks again.
    let (code, _, asked) = sdlab_on(home, &["solution", FIXTURE]);
    assert_eq!(code, 1, "{asked}");
    assert!(asked.contains("pass --yes"), "{asked}");
    assert_eq!(window.call("POST", "/solution", "").0, StatusCode::CONFLICT);
    let (status, _) = window.call("POST", "/solution", r#"{"confirm": true}"#);
    assert_eq!(status, StatusCode::OK);
    let (code, notes, err) = sdlab_on(home, &["solution", FIXTURE]);
    assert_eq!(code, 0, "{err}");
    assert!(notes.contains("It was never broken."), "{notes}");

    // While a lab process holds the scenario (its run state names a live process), both
    // refuse a reset and change nothing.
    let service = home.join("work").join(FIXTURE_DIR).join("service");
    std::fs::create_dir_all(service.join("src")).unwrap();
    std::fs::write(service.join("src/main.rs"), "//! mine\n").unwrap();
    let mut holder = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .unwrap();
    RunState {
        scenario: FIXTURE.to_string(),
        owner_pid: holder.id(),
        owner_start_time: process::start_time(holder.id()),
        postgres_url: None,
        postmaster_pid: None,
        replica_url: None,
        replica_pid: None,
        services: Vec::new(),
        workers: Vec::new(),
        nginx_url: None,
        redis_url: None,
        metrics_port: None,
    }
    .write(&home.join("run").join(format!("{FIXTURE}.json")))
    .unwrap();
    let (code, _, refused) = sdlab_on(home, &["reset", FIXTURE, "--yes"]);
    let (status, body) = window.call("POST", "/reset", "");
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_ne!(code, 0, "{refused}");
    let stop = format!("sdlab stop {FIXTURE}");
    let pid = format!("pid {}", holder.id());
    assert!(
        refused.contains(&stop) && refused.contains(&pid),
        "{refused}"
    );
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains(&stop) && error.contains(&pid), "{body}");
    assert_eq!(
        std::fs::read_to_string(service.join("src/main.rs")).unwrap(),
        "//! mine\n"
    );
    // That process gone, the terminal resets (the broken code back, the learner's kept).
    let (code, out, err) = sdlab_on(home, &["reset", FIXTURE, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Your code was backed up to "), "{out}");
    assert_eq!(
        std::fs::read_to_string(service.join("src/main.rs")).unwrap(),
        FIXTURE_MAIN
    );

    // A load run and a check from the terminal are in the window's history and progress.
    let (code, _, err) = sdlab_on(home, &["load", FIXTURE]);
    assert_eq!(code, 0, "{}", tail(&err, 30));
    let (_, history) = window.call("GET", "/history", "");
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{history}");
    assert_eq!(runs[0]["kind"], "load");
    assert!(
        runs[0]["summary"]["sent"].as_u64().unwrap() > 0,
        "{history}"
    );
    assert!(
        !runs[0]["seconds"].as_array().unwrap().is_empty(),
        "{history}"
    );

    let (code, table, err) = sdlab_on(home, &["check", FIXTURE]);
    assert_eq!(code, 0, "{table}\n{}", tail(&err, 30));
    let (_, history) = window.call("GET", "/history", "");
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{history}");
    assert_eq!(
        (&runs[1]["kind"], &runs[1]["passed"]),
        (&Value::from("check"), &Value::from(true))
    );
    let (_, detail) = window.call("GET", "", "");
    assert_eq!(detail["progress"]["checks_run"], 1, "{detail}");
    assert_eq!(detail["progress"]["passed"], true, "{detail}");
    // A check of the solution is not the learner's: it is not recorded.
    let (code, _, err) = sdlab_on(home, &["check", FIXTURE, "--solution"]);
    assert_eq!(code, 0, "{}", tail(&err, 30));
    let (_, history) = window.call("GET", "/history", "");
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
}
