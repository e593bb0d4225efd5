//! The author's commands: `sdlab new` (a scenario folder from the engine's templates) and
//! `sdlab lint` (the catalog lint on any `scenarios/` tree), described in docs/AUTHORING.md; and
//! `sdlab devcontainers` (the Codespaces configurations generated from the catalog).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use sdlab_engine::catalog::devcontainer;
use sdlab_engine::catalog::lint::lint as lint_tree;
use sdlab_engine::catalog::scaffold::{self, NewScenario};
use sdlab_engine::catalog::Catalog;
use sdlab_engine::Sources;

/// `sdlab new <id> --title ... [--track N] [--stage S]`: creates the scenario under the
/// sources' `scenarios/` (SDLAB_ROOT, or the checkout), lints it and says what to do next.
pub fn new(id: &str, title: &str, track: Option<u8>, stage: Option<String>) -> Result<ExitCode> {
    let sources = Sources::from_env();
    let root = sources.scenarios_dir();
    let created = scaffold::create(
        &root,
        &NewScenario {
            id: id.to_string(),
            title: title.to_string(),
            track,
            stage,
        },
    )
    .context("cannot create the scenario")?;
    println!(
        "created {} (track {}, {}):",
        created.dir.display(),
        created.track,
        created.stage
    );
    for file in &created.files {
        println!("  {}", file.display());
    }
    let folder = created
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let problems: Vec<_> = lint_tree(&root)
        .into_iter()
        .filter(|p| p.folder == folder)
        .collect();
    for p in &problems {
        println!("lint: {p}");
    }
    let root_dir = sources.root.display();
    println!("\nNext:");
    for (command, why) in [
        (
            format!("cd {root_dir} && cargo build"),
            format!("adds scenario-{id}-service and -solution to Cargo.lock (commit it)"),
        ),
        (
            "sdlab lint".to_string(),
            "the folder follows the contract".to_string(),
        ),
        (
            "sdlab devcontainers".to_string(),
            format!("its Codespaces configuration, .devcontainer/{id}/ (commit it)"),
        ),
        (
            format!("sdlab check {id} --fix <name>"),
            "one attempt of fixes/ (broken, solution, ...) gets its verdict".to_string(),
        ),
    ] {
        println!("  {command:<40} # {why}");
    }
    println!("Then make the lesson yours: docs/AUTHORING.md.");
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `sdlab lint [--root DIR]`: every problem of every scenario under DIR (default: the
/// sources' `scenarios/`). Exit code 0: clean, 1: problems (listed).
pub fn lint(root: Option<PathBuf>) -> Result<ExitCode> {
    let root = root.unwrap_or_else(|| Sources::from_env().scenarios_dir());
    let problems = lint_tree(&root);
    Ok(report(&root, &problems))
}

/// `sdlab devcontainers [--check]`: writes (or, with `--check`, compares) every scenario's
/// `.devcontainer/<id>/devcontainer.json` under the sources (SDLAB_ROOT, or the checkout).
pub fn devcontainers(check: bool) -> Result<ExitCode> {
    let sources = Sources::from_env();
    let catalog = Catalog::load(&sources.scenarios_dir()).context("cannot load the catalog")?;
    let dir = sources.root.join(".devcontainer");
    if check {
        let problems = devcontainer::check(&catalog, &dir)?;
        for p in &problems {
            println!("{p}");
        }
        if problems.is_empty() {
            println!(
                "{}: one configuration per scenario ({}), as generated",
                dir.display(),
                catalog.scenarios.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        return Ok(ExitCode::FAILURE);
    }
    let changed = devcontainer::write(&catalog, &dir)?;
    for path in &changed {
        println!("  {}", path.display());
    }
    println!(
        "{}: one configuration per scenario ({}), {} file{} changed",
        dir.display(),
        catalog.scenarios.len(),
        changed.len(),
        if changed.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

fn report(root: &Path, problems: &[sdlab_engine::catalog::lint::Problem]) -> ExitCode {
    if problems.is_empty() {
        println!("{}: every scenario follows the contract", root.display());
        return ExitCode::SUCCESS;
    }
    for p in problems {
        println!("{p}");
    }
    println!(
        "{}: {} problem{}",
        root.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    ExitCode::FAILURE
}
