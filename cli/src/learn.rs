//! The learner's commands: `sdlab hint`, `sdlab solution` and `sdlab reset`. The rules
//! (which hint is next, when the solution may show, when a reset is allowed and what it backs
//! up) are the engine's `learner` module, shared with the API; this file only asks and prints.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

use sdlab_engine::learner;

use crate::commands::{lab, scenario};
use crate::view;

pub async fn hint(id: &str) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    if scenario.hints.is_empty() {
        println!("{} has no hints.", scenario.id);
        return Ok(ExitCode::SUCCESS);
    }
    let hints = learner::next_hint(&lab.home, &scenario)?;
    let total = hints.total;
    // Earlier hints first, as a reminder, then the new one.
    for (i, hint) in hints.shown.iter().enumerate() {
        if hints.revealed_now && i + 1 == hints.shown.len() {
            println!("Hint {} of {total}: {hint}", i + 1);
        } else {
            println!("Hint {} of {total} (seen): {hint}", i + 1);
        }
    }
    if hints.all_seen() {
        println!(
            "That is the last hint. Still stuck? `sdlab solution {}` shows the annotated solution.",
            scenario.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn solution(id: &str, yes: bool) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    // Asked only before the first check and before it was ever revealed (here or in the window).
    if !yes && learner::solution_needs_confirmation(&lab.home, &scenario) {
        let question = format!(
            "You have not run `sdlab check {}` yet. Trying first is where the learning is. Reveal the solution anyway?",
            scenario.id
        );
        if !confirm(&question)? {
            eprintln!(
                "Not revealed. Run `sdlab check {}` first, or pass --yes.",
                scenario.id
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let text = learner::reveal_solution(&lab.home, &scenario, true)?;
    println!("{text}");
    println!(
        "\nThe solution's code: {}\nYour code:           {}",
        scenario.dir.join("solution").display(),
        lab.home.learner_service_dir(&scenario).display()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn reset(id: &str, yes: bool) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    // Refused before asking: a running lab's service holds the code and the database.
    learner::may_reset(&lab, &scenario)?;
    if !yes
        && !confirm(&format!(
        "Reset {}: restore the broken code and the seeded database? Your code is backed up first.",
        scenario.id
    ))? {
        eprintln!("Nothing changed.");
        return Ok(ExitCode::FAILURE);
    }
    let parts = learner::ResetParts {
        code: true,
        database: true,
    };
    let outcome = learner::reset(&lab, &scenario, parts, &view::progress())
        .await
        .context("reset the scenario")?;
    match outcome.backup {
        Some(backup) => println!("Your code was backed up to {}", backup.display()),
        None => println!("There was no code of yours to back up."),
    }
    if outcome.database_reset {
        println!("The database is back to its seeded state.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks a yes/no question on the terminal. Without a terminal the answer is no: scripts
/// must say --yes.
fn confirm(question: &str) -> Result<bool> {
    if !view::interactive() {
        eprintln!("{question}\n(no terminal to ask on: pass --yes to proceed)");
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
