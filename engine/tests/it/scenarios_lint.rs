//! The catalog lint on the repository's `scenarios/`: one test per rule of
//! `sdlab_engine::catalog::lint` (the rules live in the engine so `sdlab lint` runs them on
//! any tree), each listing every offender of its rule.

// A failed setup must fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sdlab_engine::catalog::lint::{lint, Problem, Rule};

fn scenarios_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// The repository's problems, computed once for all the tests of this file.
fn problems() -> &'static [Problem] {
    static PROBLEMS: std::sync::OnceLock<Vec<Problem>> = std::sync::OnceLock::new();
    PROBLEMS.get_or_init(|| lint(&scenarios_root()))
}

fn assert_rule_clean(rule: Rule) {
    let offenders: Vec<String> = problems()
        .iter()
        .filter(|p| p.rule == rule)
        .map(Problem::to_string)
        .collect();
    assert!(
        offenders.is_empty(),
        "{}:\n  {}",
        rule.name(),
        offenders.join("\n  ")
    );
}

#[test]
fn every_scenario_toml_parses_and_its_id_prefixes_the_folder() {
    assert_rule_clean(Rule::ScenarioToml);
}

#[test]
fn every_service_path_exists_in_the_solution() {
    assert_rule_clean(Rule::SolutionCoversService);
}

#[test]
fn broken_service_has_no_todo_markers() {
    assert_rule_clean(Rule::NoTodoInService);
}

#[test]
fn every_guide_has_its_sections_in_order() {
    assert_rule_clean(Rule::GuideSections);
}

#[test]
fn every_guides_questions_parse() {
    assert_rule_clean(Rule::GuideQuestions);
}

#[test]
fn every_solution_has_notes() {
    assert_rule_clean(Rule::SolutionNotes);
}

#[test]
fn every_hint_is_filled_in() {
    assert_rule_clean(Rule::Hints);
}

#[test]
fn cargo_packages_are_named_after_the_scenario_id() {
    assert_rule_clean(Rule::PackageNames);
}

#[test]
fn every_scenarios_fixes_are_complete() {
    assert_rule_clean(Rule::Fixes);
}

#[test]
fn every_rule_has_a_test_here() {
    // A rule added to the engine needs its line above, so its offenders are reported.
    assert_eq!(Rule::ALL.len(), 9);
}

/// The lint itself: a tree with a broken scenario reports each offence under its rule.
#[test]
fn a_bad_tree_reports_every_offence() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t1-77-bad");
    std::fs::create_dir_all(dir.join("service/src")).unwrap();
    std::fs::write(dir.join("service/src/main.rs"), "// TODO: add an index\n").unwrap();
    std::fs::write(dir.join("SCENARIO.md"), "## Situation\n## Fix\n").unwrap();
    let problems = lint(root.path());
    for rule in [
        Rule::ScenarioToml,
        Rule::SolutionCoversService,
        Rule::NoTodoInService,
        Rule::GuideSections,
        Rule::SolutionNotes,
        Rule::Fixes,
    ] {
        assert!(
            problems.iter().any(|p| p.rule == rule),
            "no {} problem in {problems:#?}",
            rule.name()
        );
    }
}
