//! Every scenario's `fixes/` list is complete and applies to its code, and a fix is
//! materialized exactly as it says (files removed, copied, edited once, written).

// Helpers unwrap too: a failed setup must fail the test loudly (clippy only exempts the
// test functions themselves).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sdlab_engine::catalog::fixes::{find_fix, lint_fixes, load_fixes, FixKind};

fn scenario_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("scenario.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_scenario_lists_its_broken_solution_correct_and_wrong_fixes() {
    let problems: Vec<String> = scenario_dirs().iter().flat_map(|d| lint_fixes(d)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_fix_materializes_into_a_service_package() {
    for dir in scenario_dirs() {
        for (name, fix) in load_fixes(&dir).unwrap() {
            let out = tempfile::tempdir().unwrap();
            let code = out.path().join("code");
            sdlab_engine::workspace::materialize_fix(&fix, &dir, &code)
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", dir.display()));
            assert!(code.join("Cargo.toml").is_file(), "{name}");
            for file in &fix.remove {
                assert!(!code.join(file).exists(), "{name}: {file} was not removed");
            }
            for w in &fix.write {
                assert_eq!(std::fs::read_to_string(code.join(&w.file)).unwrap(), w.text);
            }
            for e in &fix.edit {
                let text = std::fs::read_to_string(code.join(&e.file)).unwrap();
                assert!(
                    text.contains(&e.replace),
                    "{name}: edit of {} not applied",
                    e.file
                );
            }
        }
    }
}

/// A scenario folder with a service, a solution and the given fix files.
fn fixture(fixes: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for code in ["service", "solution"] {
        std::fs::create_dir_all(dir.path().join(code).join("src")).unwrap();
        std::fs::write(dir.path().join(code).join("Cargo.toml"), "[package]\n").unwrap();
        std::fs::write(
            dir.path().join(code).join("src/main.rs"),
            format!("// {code}\nconst POOL: u32 = 10;\n"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.path().join("fixes")).unwrap();
    for (name, text) in fixes {
        std::fs::write(dir.path().join("fixes").join(format!("{name}.toml")), text).unwrap();
    }
    dir
}

#[test]
fn a_fix_copies_edits_and_writes_on_top_of_its_base() {
    let dir = fixture(&[(
        "mixed",
        r#"
about = "solution's main, a bigger pool, a migration"
kind = "correct"
from = "service"
[[copy]]
file = "src/main.rs"
from = "solution"
[[edit]]
file = "src/main.rs"
find = "POOL: u32 = 10"
replace = "POOL: u32 = 20"
[[write]]
file = "migrations/0001_x.sql"
text = "CREATE INDEX x ON t (a);\n"
"#,
    )]);
    let fix = find_fix(dir.path(), "mixed").unwrap();
    assert_eq!(fix.kind, FixKind::Correct);
    let out = dir.path().join("out");
    sdlab_engine::workspace::materialize_fix(&fix, dir.path(), &out).unwrap();
    let main = std::fs::read_to_string(out.join("src/main.rs")).unwrap();
    assert_eq!(main, "// solution\nconst POOL: u32 = 20;\n");
    assert!(out.join("migrations/0001_x.sql").is_file());
}

#[test]
fn an_edit_that_does_not_match_once_is_refused_by_the_lint_and_the_fix() {
    let dir = fixture(&[(
        "typo",
        "about = \"x\"\nkind = \"wrong\"\n[[edit]]\nfile = \"src/main.rs\"\nfind = \"POOL: u64\"\nreplace = \"y\"\n",
    )]);
    let problems = lint_fixes(dir.path()).join("\n");
    assert!(problems.contains("occurs 0 times"), "{problems}");
    // A wrong fix without a failing line and its hint is not a useful regression test.
    assert!(problems.contains("needs an [[expect]]"), "{problems}");
    // And the list is incomplete: no broken, solution or correct fix.
    assert!(
        problems.contains("no file for the untouched service"),
        "{problems}"
    );
    let typo = find_fix(dir.path(), "typo").unwrap();
    let err = sdlab_engine::workspace::materialize_fix(&typo, dir.path(), &dir.path().join("out"))
        .unwrap_err();
    assert!(err.to_string().contains("must occur exactly once"), "{err}");
}

#[test]
fn an_unknown_field_or_fix_name_is_an_error_naming_the_file() {
    let dir = fixture(&[("bad", "about = \"x\"\nkind = \"wrong\"\nexpects = []\n")]);
    let err = load_fixes(dir.path()).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("expects"), "{err}");
    let dir = fixture(&[]);
    let err = find_fix(dir.path(), "nope").unwrap_err().to_string();
    assert!(err.contains("no fix named \"nope\""), "{err}");
}

#[test]
fn only_a_wrong_fix_may_skip_the_check_load() {
    let dir = fixture(&[
        ("right", "about = \"x\"\nkind = \"correct\"\nload = false\n"),
        (
            "quick",
            "about = \"x\"\nkind = \"wrong\"\nload = false\n[[expect]]\nline = \"pool budget\"\nresult = \"FAIL\"\nhint = \"Split\"\n",
        ),
    ]);
    let problems = lint_fixes(dir.path()).join("\n");
    assert!(
        problems.contains("right.toml: only a wrong fix may skip the load"),
        "{problems}"
    );
    assert!(!problems.contains("quick.toml: only"), "{problems}");
    assert!(!find_fix(dir.path(), "quick").unwrap().load);
    assert!(find_fix(dir.path(), "right").unwrap().kind == FixKind::Correct);
}
