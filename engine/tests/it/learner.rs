//! The learner's rules (`sdlab_engine::learner`) on a temp lab home and the real scenarios:
//! hints one at a time, when the solution is shown without asking, what a finished check or
//! load run records, when a reset is refused and what it keeps. No PostgreSQL: resets here
//! restore the code only.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sdlab_engine::check::CheckReport;
use sdlab_engine::home::LearnerProgress;
use sdlab_engine::learner::{self, LearnerError, ResetParts, SecondView};
use sdlab_engine::load::{LatencySummary, RunSummary};
use sdlab_engine::process::{self, RunState};
use sdlab_engine::progress::Progress;
use sdlab_engine::{Lab, LabHome, Scenario, Sources};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn lab() -> (tempfile::TempDir, Lab) {
    let home = tempfile::tempdir().unwrap();
    let lab = Lab::new(LabHome::at(home.path()), Sources::at(repo())).unwrap();
    (home, lab)
}

fn t101(lab: &Lab) -> Scenario {
    lab.scenario("t1-01").unwrap().clone()
}

fn summary(sent: u64, p95_ms: u64) -> RunSummary {
    RunSummary {
        duration: Duration::from_secs(3),
        sent,
        ok: sent,
        failed: 0,
        error_rate: 0.0,
        achieved_rate: sent as f64 / 3.0,
        offered_rate: sent as f64 / 3.0,
        latency: LatencySummary {
            p95: Duration::from_millis(p95_ms),
            ..LatencySummary::default()
        },
        per_template: Vec::new(),
        errors: Default::default(),
        histogram: hdrhistogram::Histogram::new(3).unwrap(),
    }
}

fn second(n: u32) -> SecondView {
    serde_json::from_value(serde_json::json!({
        "second": n, "sent": 10, "ok": 10, "failed": 0, "errors": {},
        "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "max_ms": 4.0, "in_flight": 0
    }))
    .unwrap()
}

fn report(passed: bool, summary: Option<RunSummary>) -> CheckReport {
    CheckReport {
        scenario: "t1-01".to_string(),
        code: "your code".to_string(),
        lines: Vec::new(),
        passed,
        summary,
        log_errors: Vec::new(),
        answers_judged: None,
    }
}

#[test]
fn hints_are_revealed_one_at_a_time_and_the_last_stays() {
    let (_home, lab) = lab();
    let scenario = t101(&lab);
    let total = scenario.hints.len();
    assert!(total >= 2);
    let none = learner::hints(&lab.home, &scenario);
    assert_eq!(
        (none.total, none.shown.len(), none.revealed_now),
        (total, 0, false)
    );

    let first = learner::next_hint(&lab.home, &scenario).unwrap();
    assert_eq!(first.shown, scenario.hints[..1].to_vec());
    assert!(first.revealed_now && !first.all_seen());
    // Looking does not reveal.
    assert_eq!(learner::hints(&lab.home, &scenario).shown.len(), 1);

    for _ in 1..total {
        learner::next_hint(&lab.home, &scenario).unwrap();
    }
    let after = learner::next_hint(&lab.home, &scenario).unwrap();
    assert_eq!(after.shown, scenario.hints);
    assert!(after.all_seen() && !after.revealed_now);
    let mut progress = LearnerProgress::load(&lab.home);
    assert_eq!(progress.scenario("t1-01").hints_shown as usize, total);
}

#[test]
fn the_solution_asks_before_the_first_check_and_never_again_once_revealed() {
    let (_home, lab) = lab();
    let scenario = t101(&lab);
    assert!(learner::solution_needs_confirmation(&lab.home, &scenario));
    let refused = learner::reveal_solution(&lab.home, &scenario, false).unwrap_err();
    assert!(
        matches!(refused, LearnerError::NotTriedYet { .. }),
        "{refused}"
    );
    assert!(
        !LearnerProgress::load(&lab.home)
            .scenario("t1-01")
            .solution_revealed
    );

    let notes = learner::reveal_solution(&lab.home, &scenario, true).unwrap();
    assert_eq!(
        notes,
        std::fs::read_to_string(scenario.solution_notes_path()).unwrap()
    );
    assert!(!learner::solution_needs_confirmation(&lab.home, &scenario));
    assert!(learner::reveal_solution(&lab.home, &scenario, false).is_ok());
}

#[test]
fn a_recorded_check_counts_opens_the_solution_and_lands_in_the_history() {
    let (_home, lab) = lab();
    let scenario = t101(&lab);
    learner::record_check(
        &lab.home,
        "t1-01",
        &report(false, Some(summary(90, 800))),
        vec![second(0), second(1)],
    )
    .unwrap();
    let mut progress = LearnerProgress::load(&lab.home);
    let entry = progress.scenario("t1-01");
    assert_eq!((entry.checks_run, entry.passed), (1, false));
    assert!(!learner::solution_needs_confirmation(&lab.home, &scenario));

    // A pass stays a pass; a check whose load never ran counts but has no figures to keep.
    learner::record_check(
        &lab.home,
        "t1-01",
        &report(true, Some(summary(90, 40))),
        vec![],
    )
    .unwrap();
    learner::record_check(&lab.home, "t1-01", &report(false, None), vec![]).unwrap();
    let mut progress = LearnerProgress::load(&lab.home);
    let entry = progress.scenario("t1-01");
    assert_eq!((entry.checks_run, entry.passed), (3, true));

    let runs = learner::history::load(&lab.home, "t1-01");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].kind.as_str(), runs[0].passed, runs[0].seconds.len()),
        ("check", Some(false), 2)
    );
    assert_eq!(runs[0].summary.as_ref().unwrap().latency.p95_ms, 800.0);
    assert_eq!(runs[1].passed, Some(true));
}

#[test]
fn a_recorded_load_run_keeps_its_figures_and_does_not_count_as_a_check() {
    let (_home, lab) = lab();
    learner::record_load(&lab.home, "t1-01", &summary(30, 120), vec![second(0)]).unwrap();
    let runs = learner::history::load(&lab.home, "t1-01");
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].kind.as_str(), runs[0].passed), ("load", None));
    let figures = runs[0].summary.as_ref().unwrap();
    assert_eq!((figures.sent, figures.latency.p95_ms), (30, 120.0));
    assert!(runs[0].finished_at > 0);
    assert_eq!(
        LearnerProgress::load(&lab.home)
            .scenario("t1-01")
            .checks_run,
        0
    );
    // Another scenario's history is its own.
    assert!(learner::history::load(&lab.home, "t1-02").is_empty());
}

#[test]
fn the_history_keeps_the_newest_fifty_runs() {
    let (_home, lab) = lab();
    for sent in 0..55 {
        learner::record_load(&lab.home, "t1-01", &summary(sent, 1), vec![]).unwrap();
    }
    let runs = learner::history::load(&lab.home, "t1-01");
    assert_eq!(runs.len(), 50);
    assert_eq!(runs[0].summary.as_ref().unwrap().sent, 5);
    assert_eq!(runs[49].summary.as_ref().unwrap().sent, 54);
}

/// Writes a run state for `scenario` owned by `pid`, as a lab process does.
fn live_lab(lab: &Lab, scenario: &str, pid: u32) {
    RunState {
        scenario: scenario.to_string(),
        owner_pid: pid,
        owner_start_time: process::start_time(pid),
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
    .write(&RunState::path(&lab.home.run_dir(), scenario))
    .unwrap();
}

#[tokio::test]
async fn a_reset_is_refused_while_a_lab_process_holds_the_scenario() {
    let (_home, lab) = lab();
    let scenario = t101(&lab);
    let service = lab.home.learner_service_dir(&scenario);
    std::fs::create_dir_all(service.join("src")).unwrap();
    std::fs::write(service.join("src/main.rs"), "//! mine\n").unwrap();

    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    live_lab(&lab, "t1-01", other.id());
    let code_only = ResetParts {
        code: true,
        database: false,
    };
    let refused = learner::reset(&lab, &scenario, code_only, &Progress::none())
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(matches!(refused, LearnerError::Running { .. }), "{message}");
    assert!(
        message.contains(&format!("pid {}", other.id())) && message.contains("sdlab stop t1-01"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(service.join("src/main.rs")).unwrap(),
        "//! mine\n"
    );

    // Once that process is gone, its run state no longer holds the scenario.
    other.kill().unwrap();
    other.wait().unwrap();
    learner::may_reset(&lab, &scenario).unwrap();
}

#[tokio::test]
async fn a_reset_backs_the_code_up_and_drops_the_editors_drafts() {
    let (_home, lab) = lab();
    let scenario = t101(&lab);
    let code_only = ResetParts {
        code: true,
        database: false,
    };
    // Nothing of the learner's yet: nothing to back up.
    let first = learner::reset(&lab, &scenario, code_only, &Progress::none())
        .await
        .unwrap();
    assert_eq!(
        (first.backup, first.code_reset, first.database_reset),
        (None, true, false)
    );
    let main = lab.home.learner_service_dir(&scenario).join("src/main.rs");
    let original = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, "//! mine\n").unwrap();
    let drafts = lab.home.root.join("drafts/t1-01/src");
    std::fs::create_dir_all(&drafts).unwrap();
    std::fs::write(drafts.join("main.rs"), "//! unsaved\n").unwrap();

    let second = learner::reset(&lab, &scenario, code_only, &Progress::none())
        .await
        .unwrap();
    let backup = second.backup.unwrap();
    assert_eq!(
        std::fs::read_to_string(backup.join("src/main.rs")).unwrap(),
        "//! mine\n"
    );
    assert_eq!(std::fs::read_to_string(&main).unwrap(), original);
    assert!(!lab.home.root.join("drafts/t1-01").exists());

    // Without the code part, the code stays as it is.
    std::fs::write(&main, "//! mine again\n").unwrap();
    let none = ResetParts {
        code: false,
        database: false,
    };
    let third = learner::reset(&lab, &scenario, none, &Progress::none())
        .await
        .unwrap();
    assert_eq!((third.backup, third.code_reset), (None, false));
    assert_eq!(std::fs::read_to_string(&main).unwrap(), "//! mine again\n");
}
