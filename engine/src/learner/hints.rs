//! Hints, one at a time from gentle to explicit: how many the learner has seen is kept in
//! `progress.json`, so the terminal and the window continue from the same one.

use super::{save, LearnerError};
use crate::catalog::Scenario;
use crate::home::{LabHome, LearnerProgress};

/// The hints a learner has seen of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hints {
    /// How many the scenario has.
    pub total: usize,
    /// The hints seen so far, in order (the last one may be `revealed_now`).
    pub shown: Vec<String>,
    /// Whether this call revealed the last of `shown` (false once all were seen).
    pub revealed_now: bool,
}

impl Hints {
    /// Whether no hint is left to reveal.
    pub fn all_seen(&self) -> bool {
        self.shown.len() >= self.total
    }

    fn of(scenario: &Scenario, shown: u32, revealed_now: bool) -> Hints {
        Hints {
            total: scenario.hints.len(),
            shown: scenario
                .hints
                .iter()
                .take(shown as usize)
                .cloned()
                .collect(),
            revealed_now,
        }
    }
}

/// The hints seen so far, without revealing one.
pub fn hints(home: &LabHome, scenario: &Scenario) -> Hints {
    let mut progress = LearnerProgress::load(home);
    Hints::of(scenario, progress.scenario(&scenario.id).hints_shown, false)
}

/// Reveals the next hint and remembers it; once all were seen, nothing new is revealed.
pub fn next_hint(home: &LabHome, scenario: &Scenario) -> Result<Hints, LearnerError> {
    let mut progress = LearnerProgress::load(home);
    let entry = progress.scenario(&scenario.id);
    if (entry.hints_shown as usize) >= scenario.hints.len() {
        return Ok(Hints::of(scenario, entry.hints_shown, false));
    }
    entry.hints_shown += 1;
    let shown = entry.hints_shown;
    save(home, &progress)?;
    Ok(Hints::of(scenario, shown, true))
}
