//! Golden tests of scenario t1-01: the broken service fails with the guide's symptoms, the
//! solution and a different correct fix pass, and both tempting wrong fixes of CATALOG.md fail.
//!
//! The check runs 60 requests/s; the broken service manages a few (the feed costs ~0.5 CPU
//! seconds per call), the fixed one answers in milliseconds. Assertions are on which lines
//! pass, never on exact latencies.

use std::time::Duration;

use crate::harness::*;

#[test]
fn untouched_broken_service_fails_with_slow_feed_errors_and_a_connection_per_request() {
    let home = shared_home();
    // The learner's untouched copy: reset it in case an earlier run left edits behind.
    let out = run(
        {
            let mut c = sdlab(&home);
            c.args(["reset", "t1-01", "--yes"]);
            c
        },
        Duration::from_secs(600),
    );
    assert!(out.status.success(), "{:?}", text(&out));

    let (code, table, _) = check(&home, &[]);
    assert_eq!(code, 1, "the broken service must fail the check");
    // The symptom the guide describes: latency in seconds and failing requests...
    assert!(!passes(&table, "p95 latency  "), "{table}");
    assert!(!passes(&table, "p95 latency of feed"), "{table}");
    let errors = table_line(&table, "error rate");
    assert!(!errors.ends_with("PASS"), "{table}");
    assert!(
        errors.contains("timeout") || errors.contains("http 503"),
        "errors should name their kind: {errors}"
    );
    // ...a feed plan that scans and sorts, and a new PostgreSQL session per request.
    let plan = table_line(&table, "feed query uses an index");
    assert!(
        plan.contains("Seq Scan on posts") && plan.contains("Sort"),
        "{plan}"
    );
    assert!(!passes(&table, "new DB connections per request"), "{table}");
    assert!(!passes(&table, "pool metrics exported"), "{table}");
    assert!(
        table.contains("Hints:"),
        "failing lines come with hints:\n{table}"
    );
}

#[test]
fn solution_passes_every_line() {
    let (code, table, _) = check(&shared_home(), &["--solution"]);
    assert_eq!(code, 0, "{table}");
    assert!(!table.contains("FAIL"), "{table}");
    assert!(table.contains("PASS: 8 of 8 lines pass"), "{table}");
}

#[test]
fn a_different_correct_fix_passes_too() {
    // A bigger pool than the solution's and an ascending index under another name: PostgreSQL
    // reads it backwards for ORDER BY created_at DESC. The check judges plans, not names.
    let code_dir = variant_of(&scenario_dir().join("solution"));
    edit(
        &code_dir.path().join("src/main.rs"),
        "max_connections: 10,",
        "max_connections: 24,",
    );
    std::fs::remove_file(code_dir.path().join("migrations/0001_feed_index.sql")).unwrap();
    std::fs::write(
        code_dir.path().join("migrations/0001_recent_posts.sql"),
        "CREATE INDEX posts_recent ON posts (created_at);\n",
    )
    .unwrap();
    let (code, table, _) = check(
        &shared_home(),
        &["--code", code_dir.path().to_str().unwrap()],
    );
    assert_eq!(code, 0, "{table}");
    assert!(
        table_line(&table, "feed query uses an index").contains("posts_recent"),
        "{table}"
    );
    assert!(table_line(&table, "pool budget").contains("24"), "{table}");
}

#[test]
fn shared_pool_without_the_index_fails_on_latency_and_the_plan() {
    // Wrong fix 1: the pool alone. PostgreSQL stays CPU-bound on scanning and sorting.
    let code_dir = variant_of(&scenario_dir().join("solution"));
    std::fs::remove_file(code_dir.path().join("migrations/0001_feed_index.sql")).unwrap();
    let (code, table, _) = check(
        &shared_home(),
        &["--code", code_dir.path().to_str().unwrap()],
    );
    assert_eq!(code, 1, "{table}");
    assert!(!passes(&table, "p95 latency of feed"), "{table}");
    assert!(!passes(&table, "feed query uses an index"), "{table}");
    // The part that was fixed is recognised as fixed.
    assert!(passes(&table, "new DB connections per request"), "{table}");
    assert!(passes(&table, "pool metrics exported"), "{table}");
}

#[test]
fn index_while_still_connecting_per_request_fails_on_connections() {
    // Wrong fix 2: the index alone. Fast enough at this rate, but every request still opens
    // a PostgreSQL session: a connection storm waiting for the next peak.
    let code_dir = variant_of(&scenario_dir().join("service"));
    std::fs::copy(
        scenario_dir().join("solution/migrations/0001_feed_index.sql"),
        code_dir.path().join("migrations/0001_feed_index.sql"),
    )
    .unwrap();
    let (code, table, _) = check(
        &shared_home(),
        &["--code", code_dir.path().to_str().unwrap()],
    );
    assert_eq!(code, 1, "{table}");
    assert!(passes(&table, "feed query uses an index"), "{table}");
    let conns = table_line(&table, "new DB connections per request");
    assert!(conns.ends_with("FAIL"), "{table}");
    assert!(!passes(&table, "pool metrics exported"), "{table}");
}

#[test]
fn code_that_does_not_compile_shows_the_compiler_diagnostics() {
    let code_dir = variant_of(&scenario_dir().join("solution"));
    edit(
        &code_dir.path().join("src/main.rs"),
        "let config = Config::from_env()?;",
        "let config = Config::from_env()?",
    );
    let (code, stdout, stderr) = check(
        &shared_home(),
        &["--code", code_dir.path().to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(stdout.contains("could not be started"), "{stdout}");
    assert!(stderr.contains("does not compile"), "{stderr}");
    assert!(
        stderr.contains("error") && stderr.contains("src/main.rs"),
        "{stderr}"
    );
}

#[test]
fn sql_console_runs_explain_analyze_on_the_seeded_database() {
    let mut cmd = sdlab(&shared_home());
    cmd.args([
        "sql",
        "t1-01",
        "EXPLAIN ANALYZE SELECT count(*) FROM users; SELECT count(*) AS posts FROM posts WHERE id <= 1000",
    ]);
    let out = run(cmd, Duration::from_secs(600));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("Execution Time"), "{stdout}");
    assert!(
        stdout.contains(" posts\n") && stdout.contains(" 1000\n"),
        "{stdout}"
    );

    let mut bad = sdlab(&shared_home());
    bad.args(["sql", "t1-01", "SELECT * FROM no_such_table"]);
    let out = run(bad, Duration::from_secs(600));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("no_such_table"), "{:?}", text(&out));
}

#[test]
fn reset_restores_the_code_and_keeps_a_backup_of_the_learners_version() {
    let home = shared_home();
    let mut c = sdlab(&home);
    c.args(["reset", "t1-01", "--yes"]);
    assert!(run(c, Duration::from_secs(600)).status.success());
    let main = home.join("work/t1-01-diagnosing-failures/service/src/main.rs");
    let original = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{original}\n// my experiment\n")).unwrap();

    // Without a terminal and without --yes, reset refuses and changes nothing.
    let mut refused = sdlab(&home);
    refused.args(["reset", "t1-01"]);
    let out = run(refused, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    assert!(std::fs::read_to_string(&main)
        .unwrap()
        .contains("my experiment"));

    let mut c = sdlab(&home);
    c.args(["reset", "t1-01", "--yes"]);
    let out = run(c, Duration::from_secs(600));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(std::fs::read_to_string(&main).unwrap(), original);
    let backup = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Your code was backed up to "))
        .expect("reset names the backup");
    let kept = std::fs::read_to_string(std::path::Path::new(backup).join("src/main.rs")).unwrap();
    assert!(kept.contains("my experiment"));
}

#[test]
fn hints_come_one_at_a_time_from_gentle_to_explicit() {
    let home = fresh_home();
    let hint = || {
        let mut c = sdlab(home.path());
        c.args(["hint", "t1-01"]);
        let out = run(c, Duration::from_secs(60));
        assert!(out.status.success());
        text(&out).0
    };
    let first = hint();
    assert!(first.starts_with("Hint 1 of 4: "), "{first}");
    let second = hint();
    assert!(
        second.contains("Hint 1 of 4 (seen)") && second.contains("Hint 2 of 4: "),
        "{second}"
    );
    hint();
    let last = hint();
    assert!(
        last.contains("Hint 4 of 4: ") && last.contains("sdlab solution t1-01"),
        "{last}"
    );
}
