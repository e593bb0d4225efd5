//! The scenario lint, like rustlings' `dev check`: the rules every scenario folder follows
//! beyond what `scenario.toml`'s validation already checks, on any `scenarios/` tree (the
//! repository's, a packaged copy, a scaffolded one). `sdlab lint` and the engine test
//! `scenarios_lint` call [`lint`]; each rule reports every offender, not just the first.
//!
//! The contract these rules enforce is written out for authors in docs/AUTHORING.md.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{load_scenario, CheckLine, Scenario};

/// The sections every SCENARIO.md walks the learner through, in this order (others, such as
/// Recap and Predict, may sit between them).
pub const GUIDE_SECTIONS: &[&str] = &[
    "## Situation",
    "## Run it",
    "## Diagnose",
    "## Fix",
    "## Verify",
    "## Reflect",
];

/// The lint's rules, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// `scenario.toml` loads, its id prefixes the folder name, and no two folders share an id.
    ScenarioToml,
    /// Every file of `service/` exists in `solution/` (the solution may add files, not drop them).
    SolutionCoversService,
    /// No TODO marker in `service/`: it would give the fault away.
    NoTodoInService,
    /// SCENARIO.md has the sections of [`GUIDE_SECTIONS`], in order.
    GuideSections,
    /// SCENARIO.md's ```question blocks parse (ids, figures).
    GuideQuestions,
    /// `solution/SOLUTION.md` exists and is not empty.
    SolutionNotes,
    /// The scenario has hints and every check line has a hint.
    Hints,
    /// `service/` and `solution/` are the Cargo packages `scenario-<id>-service`/`-solution`.
    PackageNames,
    /// `fixes/`: the broken, solution, correct and wrong attempts and their expectations.
    Fixes,
}

impl Rule {
    pub const ALL: &'static [Rule] = &[
        Rule::ScenarioToml,
        Rule::SolutionCoversService,
        Rule::NoTodoInService,
        Rule::GuideSections,
        Rule::GuideQuestions,
        Rule::SolutionNotes,
        Rule::Hints,
        Rule::PackageNames,
        Rule::Fixes,
    ];

    /// A short name for the rule, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Rule::ScenarioToml => "scenario.toml",
            Rule::SolutionCoversService => "solution covers service",
            Rule::NoTodoInService => "no TODO in service",
            Rule::GuideSections => "guide sections",
            Rule::GuideQuestions => "guide questions",
            Rule::SolutionNotes => "solution notes",
            Rule::Hints => "hints",
            Rule::PackageNames => "package names",
            Rule::Fixes => "fixes",
        }
    }
}

/// One offence: which rule, where (the scenario folder's name, or the tree), and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub rule: Rule,
    pub folder: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {}",
            self.rule.name(),
            self.folder,
            self.message
        )
    }
}

/// Every problem of every scenario folder under `scenarios_root` (all folders except `kit`
/// and hidden ones), sorted by rule then folder. Empty: the tree is clean.
pub fn lint(scenarios_root: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let dirs = match scenario_dirs(scenarios_root) {
        Ok(dirs) => dirs,
        Err(message) => {
            return vec![Problem {
                rule: Rule::ScenarioToml,
                folder: scenarios_root.display().to_string(),
                message,
            }]
        }
    };
    if dirs.is_empty() {
        problems.push(Problem {
            rule: Rule::ScenarioToml,
            folder: scenarios_root.display().to_string(),
            message: "no scenario folders here".to_string(),
        });
    }
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dir in &dirs {
        let folder = folder_name(dir);
        let mut add = |rule: Rule, message: String| {
            problems.push(Problem {
                rule,
                folder: folder.clone(),
                message,
            })
        };
        match load_scenario(&dir.join("scenario.toml")) {
            Ok(s) => {
                if !folder.starts_with(&format!("{}-", s.id)) {
                    add(
                        Rule::ScenarioToml,
                        format!("id {:?} does not prefix the folder name", s.id),
                    );
                }
                ids.entry(s.id.clone()).or_default().push(folder.clone());
                hints(&s, &mut add);
                package_names(&s, &mut add);
            }
            Err(e) => add(Rule::ScenarioToml, e.to_string()),
        }
        solution_covers_service(dir, &mut add);
        no_todo_in_service(dir, &mut add);
        guide(dir, &mut add);
        solution_notes(dir, &mut add);
        // fixes/ is linted by catalog::fixes::lint_fixes (its format: docs/AUTHORING.md).
        for message in super::fixes::lint_fixes(dir) {
            // Its messages start with the folder's path, which the problem names already.
            let path = dir.display().to_string();
            let short = message
                .strip_prefix(&path)
                .map(|rest| rest.trim_start_matches(['/', ':', ' ']))
                .unwrap_or(&message);
            add(Rule::Fixes, short.to_string());
        }
    }
    for (id, folders) in ids.iter().filter(|(_, f)| f.len() > 1) {
        problems.push(Problem {
            rule: Rule::ScenarioToml,
            folder: folders.join(", "),
            message: format!("id {id:?} is used by several folders"),
        });
    }
    problems.sort_by(|a, b| (a.rule, &a.folder).cmp(&(b.rule, &b.folder)));
    problems
}

/// Every scenario folder: all of `scenarios_root` except the shared kit and hidden folders.
fn scenario_dirs(scenarios_root: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(scenarios_root)
        .map_err(|e| format!("cannot read {}: {e}", scenarios_root.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n != "kit" && !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Files under `dir`, relative to it, skipping build output.
fn relative_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    walk(base, &path, out);
                }
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_path_buf());
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

fn solution_covers_service(dir: &Path, add: &mut impl FnMut(Rule, String)) {
    let service = relative_files(&dir.join("service"));
    if service.is_empty() {
        add(
            Rule::SolutionCoversService,
            "service/ is missing or empty".to_string(),
        );
    }
    for rel in service {
        if !dir.join("solution").join(&rel).is_file() {
            add(
                Rule::SolutionCoversService,
                format!(
                    "service/{0} has no solution/{0} (the solution may add files, not drop them)",
                    rel.display()
                ),
            );
        }
    }
}

fn no_todo_in_service(dir: &Path, add: &mut impl FnMut(Rule, String)) {
    for rel in relative_files(&dir.join("service")) {
        // Binary files cannot hold a marker worth reporting.
        let Ok(text) = std::fs::read_to_string(dir.join("service").join(&rel)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains("TODO") {
                add(
                    Rule::NoTodoInService,
                    format!(
                        "service/{}:{}: {} (a TODO gives the fault away)",
                        rel.display(),
                        n + 1,
                        line.trim()
                    ),
                );
            }
        }
    }
}

fn guide(dir: &Path, add: &mut impl FnMut(Rule, String)) {
    let Ok(text) = std::fs::read_to_string(dir.join("SCENARIO.md")) else {
        add(Rule::GuideSections, "SCENARIO.md is missing".to_string());
        return;
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
            None if headings.contains(section) => add(
                Rule::GuideSections,
                format!("SCENARIO.md has `{section}` out of order"),
            ),
            None => add(
                Rule::GuideSections,
                format!("SCENARIO.md lacks `{section}`"),
            ),
        }
    }
    if let Err(e) = crate::api::questions(&text) {
        add(Rule::GuideQuestions, e);
    }
}

fn solution_notes(dir: &Path, add: &mut impl FnMut(Rule, String)) {
    match std::fs::read_to_string(dir.join("solution/SOLUTION.md")) {
        Ok(text) if !text.trim().is_empty() => {}
        Ok(_) => add(
            Rule::SolutionNotes,
            "solution/SOLUTION.md is empty".to_string(),
        ),
        Err(e) => add(Rule::SolutionNotes, format!("solution/SOLUTION.md: {e}")),
    }
}

fn hints(s: &Scenario, add: &mut impl FnMut(Rule, String)) {
    if s.hints.is_empty() {
        add(Rule::Hints, "scenario.toml has no hints".to_string());
    }
    for (i, hint) in s.hints.iter().enumerate() {
        if hint.trim().is_empty() {
            add(Rule::Hints, format!("hints[{i}] is empty"));
        }
    }
    for line in &s.check.lines {
        let (label, hint) = match line {
            CheckLine::Slo { metric, hint, .. } => (format!("slo {metric:?}"), hint),
            CheckLine::Plan { name, hint, .. } => (format!("plan {name:?}"), hint),
            CheckLine::Connections { hint, .. } => ("connections".to_string(), hint),
            CheckLine::MetricsPresent { hint, .. } => ("metrics".to_string(), hint),
            CheckLine::PoolBudget { hint, .. } => ("pool_budget".to_string(), hint),
            CheckLine::AcquireTimeout { hint, .. } => ("acquire_timeout".to_string(), hint),
            CheckLine::RefusedConnections { hint, .. } => ("refused_connections".to_string(), hint),
            CheckLine::InstancesUp { hint } => ("instances_up".to_string(), hint),
            CheckLine::Balance { hint, .. } => ("balance".to_string(), hint),
            CheckLine::Served { hint, .. } => ("served".to_string(), hint),
            CheckLine::DependencyCalls { hint, .. } => ("dependency_calls".to_string(), hint),
            CheckLine::CacheHits { hint, .. } => ("cache_hits".to_string(), hint),
            CheckLine::RejectedWrites { hint, .. } => ("rejected_writes".to_string(), hint),
            CheckLine::CacheTtl { hint, .. } => ("cache_ttl".to_string(), hint),
            CheckLine::FreshReads { hint, .. } => ("fresh_reads".to_string(), hint),
            CheckLine::ReplicaReads { hint, .. } => ("replica_reads".to_string(), hint),
            CheckLine::PrimaryReads { hint, .. } => ("primary_reads".to_string(), hint),
            CheckLine::Responses { hint, .. } => ("responses".to_string(), hint),
            CheckLine::RateLimit { hint, .. } => ("rate_limit".to_string(), hint),
            CheckLine::EdgeCache { hint, .. } => ("edge_cache".to_string(), hint),
            CheckLine::RequestIdsEchoed { hint, .. } => ("request_ids".to_string(), hint),
            CheckLine::RequestIdsLogged { hint, .. } => ("request_ids logs".to_string(), hint),
            CheckLine::RequestIdsPropagated { hint, .. } => {
                ("request_ids propagated".to_string(), hint)
            }
            CheckLine::RouteMetrics { hint, .. } => ("route_metrics".to_string(), hint),
            CheckLine::Drain { hint, .. } => ("drain".to_string(), hint),
            CheckLine::QueueDepth { hint, .. } => ("queue_depth".to_string(), hint),
            // Its hints are the oracles' (required when the scenario loads).
            CheckLine::Answers => continue,
        };
        if hint.trim().is_empty() {
            add(Rule::Hints, format!("check {label} has an empty hint"));
        }
    }
}

fn package_names(s: &Scenario, add: &mut impl FnMut(Rule, String)) {
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
            Ok(Some(name)) => add(
                Rule::PackageNames,
                format!("{folder}/Cargo.toml: package {name:?}, expected {expected:?}"),
            ),
            Ok(None) => add(
                Rule::PackageNames,
                format!("{folder}/Cargo.toml: no package.name"),
            ),
            Err(e) => add(Rule::PackageNames, format!("{folder}/Cargo.toml: {e}")),
        }
    }
}
