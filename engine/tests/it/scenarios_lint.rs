//! The catalog lint, like rustlings' `dev check`: every scenario folder under `scenarios/`
//! has a valid `scenario.toml`, matching `service/` and `solution/` trees, a complete guide
//! and filled-in hints. Each test lists every offender, not just the first.

// Helpers unwrap too: a failed setup must fail the test loudly (clippy only exempts the
// test functions themselves).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sdlab_engine::catalog::{load_scenario, CheckLine, Scenario};

/// The sections every SCENARIO.md walks the learner through, in this order.
const GUIDE_SECTIONS: &[&str] = &[
    "## Situation",
    "## Run it",
    "## Diagnose",
    "## Fix",
    "## Verify",
    "## Reflect",
];

fn scenarios_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Every scenario folder: all of `scenarios/` except the shared kit.
fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(scenarios_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n != "kit" && !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no scenario folders under {}",
        scenarios_root().display()
    );
    dirs
}

fn folder_name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// The scenarios that load; the parse test reports the ones that do not.
fn scenarios() -> Vec<Scenario> {
    scenario_dirs()
        .iter()
        .filter_map(|d| load_scenario(&d.join("scenario.toml")).ok())
        .collect()
}

/// Files under `dir`, relative to it, skipping build output.
fn relative_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    walk(base, &path, out);
                }
            } else {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn assert_no_problems(rule: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{rule}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_scenario_toml_parses_and_its_id_prefixes_the_folder() {
    let mut problems = Vec::new();
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dir in scenario_dirs() {
        let folder = folder_name(&dir);
        match load_scenario(&dir.join("scenario.toml")) {
            Ok(s) => {
                if !folder.starts_with(&format!("{}-", s.id)) {
                    problems.push(format!(
                        "{folder}: id {:?} does not prefix the folder name",
                        s.id
                    ));
                }
                ids.entry(s.id).or_default().push(folder);
            }
            Err(e) => problems.push(format!("{folder}: {e}")),
        }
    }
    for (id, folders) in ids.iter().filter(|(_, f)| f.len() > 1) {
        problems.push(format!(
            "id {id:?} is used by several folders: {}",
            folders.join(", ")
        ));
    }
    assert_no_problems("scenario.toml problems", &problems);
}

#[test]
fn every_service_path_exists_in_the_solution() {
    let mut problems = Vec::new();
    for dir in scenario_dirs() {
        let service = relative_files(&dir.join("service"));
        if service.is_empty() {
            problems.push(format!(
                "{}: service/ is missing or empty",
                folder_name(&dir)
            ));
        }
        for rel in service {
            if !dir.join("solution").join(&rel).is_file() {
                problems.push(format!(
                    "{}: service/{} has no solution/{0}",
                    folder_name(&dir),
                    rel.display()
                ));
            }
        }
    }
    assert_no_problems(
        "service files missing from solution/ (solution may add files, not drop them)",
        &problems,
    );
}

#[test]
fn broken_service_has_no_todo_markers() {
    let mut problems = Vec::new();
    for dir in scenario_dirs() {
        for rel in relative_files(&dir.join("service")) {
            // Binary files cannot hold a marker worth reporting.
            let Ok(text) = std::fs::read_to_string(dir.join("service").join(&rel)) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                if line.contains("TODO") {
                    problems.push(format!(
                        "{}: service/{}:{}: {}",
                        folder_name(&dir),
                        rel.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert_no_problems("TODO markers in service/ give the fault away", &problems);
}

#[test]
fn every_guide_has_its_sections_in_order() {
    let mut problems = Vec::new();
    for dir in scenario_dirs() {
        let path = dir.join("SCENARIO.md");
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(format!("{}: SCENARIO.md is missing", folder_name(&dir)));
            continue;
        };
        let headings: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|l| l.starts_with("## "))
            .collect();
        let mut at = 0;
        for section in GUIDE_SECTIONS {
            match headings[at..].iter().position(|h| h == section) {
                Some(i) => at += i + 1,
                None if headings.contains(section) => {
                    problems.push(format!(
                        "{}: SCENARIO.md has `{section}` out of order",
                        folder_name(&dir)
                    ));
                }
                None => problems.push(format!(
                    "{}: SCENARIO.md lacks `{section}`",
                    folder_name(&dir)
                )),
            }
        }
    }
    assert_no_problems("SCENARIO.md sections", &problems);
}

#[test]
fn every_solution_has_notes() {
    let mut problems = Vec::new();
    for dir in scenario_dirs() {
        let path = dir.join("solution/SOLUTION.md");
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => {}
            Ok(_) => problems.push(format!(
                "{}: solution/SOLUTION.md is empty",
                folder_name(&dir)
            )),
            Err(e) => problems.push(format!("{}: solution/SOLUTION.md: {e}", folder_name(&dir))),
        }
    }
    assert_no_problems("solution notes", &problems);
}

#[test]
fn every_hint_is_filled_in() {
    let mut problems = Vec::new();
    for s in scenarios() {
        if s.hints.is_empty() {
            problems.push(format!("{}: no hints", s.id));
        }
        for (i, hint) in s.hints.iter().enumerate() {
            if hint.trim().is_empty() {
                problems.push(format!("{}: hints[{i}] is empty", s.id));
            }
        }
        for line in &s.check.lines {
            let (label, hint) = match line {
                CheckLine::Slo { metric, hint, .. } => (format!("slo {metric:?}"), hint),
                CheckLine::Plan { name, hint, .. } => (format!("plan {name:?}"), hint),
                CheckLine::Connections { hint, .. } => ("connections".to_string(), hint),
                CheckLine::MetricsPresent { hint, .. } => ("metrics".to_string(), hint),
                CheckLine::PoolBudget { hint, .. } => ("pool_budget".to_string(), hint),
                CheckLine::RefusedConnections { hint, .. } => {
                    ("refused_connections".to_string(), hint)
                }
                CheckLine::InstancesUp { hint } => ("instances_up".to_string(), hint),
                CheckLine::Balance { hint, .. } => ("balance".to_string(), hint),
            };
            if hint.trim().is_empty() {
                problems.push(format!("{}: check {label} has an empty hint", s.id));
            }
        }
    }
    assert_no_problems("hints", &problems);
}

#[test]
fn cargo_packages_are_named_after_the_scenario_id() {
    let mut problems = Vec::new();
    for s in scenarios() {
        for (folder, expected) in [
            ("service", s.service_package()),
            ("solution", s.solution_package()),
        ] {
            let manifest = s.dir.join(folder).join("Cargo.toml");
            let name = std::fs::read_to_string(&manifest)
                .map_err(|e| e.to_string())
                .and_then(|t| t.parse::<toml::Table>().map_err(|e| e.to_string()))
                .map(|t| {
                    t.get("package")
                        .and_then(|p| p.get("name"))
                        .and_then(|n| n.as_str())
                        .map(str::to_string)
                });
            match name {
                Ok(Some(name)) if name == expected => {}
                Ok(Some(name)) => problems.push(format!(
                    "{}/{folder}: package {name:?}, expected {expected:?}",
                    s.id
                )),
                Ok(None) => problems.push(format!("{}/{folder}/Cargo.toml: no package.name", s.id)),
                Err(e) => problems.push(format!("{}/{folder}/Cargo.toml: {e}", s.id)),
            }
        }
    }
    assert_no_problems("scenario package names", &problems);
}
