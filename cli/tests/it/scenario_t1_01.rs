//! Scenario t1-01 beyond its fixes/ (which the golden test runs): code that does not compile
//! shows the compiler's diagnostics, the SQL console runs EXPLAIN ANALYZE on the seeded
//! database, an index made by hand in the console does not count in the check (the
//! clean-database rule), reset restores the code and keeps a backup, hints come one at a time.

use std::time::Duration;

use crate::harness::*;

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
fn an_index_made_by_hand_in_the_console_does_not_count_in_the_check() {
    let home = shared_home();
    // The broken code, put back by hand rather than with `sdlab reset`, which refuses while
    // another lab on the shared home runs; the index goes again at the end.
    let service = home.join("work/t1-01-diagnosing-failures/service");
    if service.exists() {
        std::fs::remove_dir_all(&service).unwrap();
    }
    copy_tree(&scenario_dir().join("service"), &service);
    let sql = |query: &str| {
        let mut c = sdlab(&home);
        c.args(["sql", "t1-01", query]);
        let out = run(c, Duration::from_secs(600));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{query}: {stderr}");
        (stdout, stderr)
    };
    // The feed's index typed in the console, not in migrations/.
    let (_, stderr) = sql("CREATE INDEX IF NOT EXISTS posts_by_hand ON posts (created_at DESC)");
    assert!(
        stderr.contains("note: this change is not in migrations/: the check will not see it."),
        "{stderr}"
    );
    // The learner's database has the index now ...
    let (plan, stderr) = sql("EXPLAIN SELECT id FROM posts ORDER BY created_at DESC LIMIT 20");
    assert!(plan.contains("Index"), "{plan}");
    assert!(!stderr.contains("note:"), "a query gets no note: {stderr}");

    // ... but the check runs the code on a fresh copy of the seed with its own migrations.
    let (code, stdout, _) = check(&home, &[]);
    sql("DROP INDEX IF EXISTS posts_by_hand");
    assert_eq!(code, 1, "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("feed query uses an index"))
        .unwrap_or_else(|| panic!("no plan line in:\n{stdout}"));
    assert!(
        line.ends_with("FAIL") && line.contains("Seq Scan"),
        "the index typed in the console counted: {line}"
    );
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
