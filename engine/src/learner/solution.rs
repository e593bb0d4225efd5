//! The annotated solution: before the learner's first check a front end asks first (trying
//! is where the learning is); once a check ran, or once the solution was revealed, it is
//! shown without asking.

use super::{save, LearnerError};
use crate::catalog::Scenario;
use crate::home::{LabHome, LearnerProgress};

/// Whether the solution needs the learner's confirmation: no check run and not revealed yet.
pub fn solution_needs_confirmation(home: &LabHome, scenario: &Scenario) -> bool {
    let mut progress = LearnerProgress::load(home);
    let entry = progress.scenario(&scenario.id);
    entry.checks_run == 0 && !entry.solution_revealed
}

/// Reveals the solution: marks it revealed and returns its notes (SOLUTION.md). Refused with
/// `NotTriedYet` when it needs confirmation and `confirmed` is false.
pub fn reveal_solution(
    home: &LabHome,
    scenario: &Scenario,
    confirmed: bool,
) -> Result<String, LearnerError> {
    if !confirmed && solution_needs_confirmation(home, scenario) {
        return Err(LearnerError::NotTriedYet {
            scenario: scenario.id.clone(),
        });
    }
    let path = scenario.solution_notes_path();
    let notes = std::fs::read_to_string(&path).map_err(|source| LearnerError::Io {
        what: "read",
        path: path.clone(),
        source,
    })?;
    let mut progress = LearnerProgress::load(home);
    progress.scenario(&scenario.id).solution_revealed = true;
    save(home, &progress)?;
    Ok(notes)
}
