//! The learner's rules, one place for every front end (the CLI, the API, the desktop app
//! through the API): the next hint, when the solution may be shown without asking, how a
//! finished check or load run is recorded, and when a reset is allowed and what it keeps.
//!
//! # Layout (one job per file)
//! - `hints.rs`: hints one at a time, remembered in `progress.json`.
//! - `solution.rs`: the solution is shown without confirmation once a check ran or once it
//!   was revealed; before that the front end asks.
//! - `runs.rs`: a finished check counts in `progress.json` (checks run, passed) and, like a
//!   load run, lands in the history with its figures and seconds.
//! - `history.rs`: the run history file, `<home>/history/<id>.json`.
//! - `reset.rs`: a reset is refused while a live lab holds the scenario; it backs the
//!   learner's code up, drops the editor's drafts and restores the seeded database.
//!
//! Front ends keep only their presentation (prompts, printed lines, JSON shapes).
//! **Invariant:** `progress.json` and `history/` are written only through this module
//! (answers to the guide's questions are the API's own; they go through `LearnerProgress`).

mod hints;
pub mod history;
mod reset;
mod runs;
mod solution;

use std::path::PathBuf;

/// A recorded run and one of its seconds, in the shape the window reads (see `history`).
pub use crate::api::{RunRecord, SecondView};
pub use hints::{hints, next_hint, Hints};
pub use reset::{may_reset, reset, ResetOutcome, ResetParts};
pub use runs::{record_check, record_load};
pub use solution::{reveal_solution, solution_needs_confirmation};

use crate::home::{LabHome, LearnerProgress};
use crate::workspace::WorkspaceError;
use crate::LabError;

/// Every way a learner rule refuses or fails.
#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    /// The solution before any check, without the learner's confirmation.
    #[error("you have not run a check on {scenario} yet; trying first is where the learning is")]
    NotTriedYet { scenario: String },
    /// A reset while a lab process holds the scenario (its service runs on the code and the
    /// database a reset would replace).
    #[error("{}", running_message(scenario, *owner_pid))]
    Running { scenario: String, owner_pid: u32 },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Lab(#[from] LabError),
}

fn running_message(scenario: &str, owner_pid: u32) -> String {
    if owner_pid == std::process::id() {
        format!(
            "{scenario} is running in this lab; stop it before resetting (its service holds the database)"
        )
    } else {
        format!(
            "{scenario} is running (sdlab pid {owner_pid}); stop it before resetting (its service holds the database): sdlab stop {scenario}"
        )
    }
}

/// Saves `progress`, naming the file on failure.
fn save(home: &LabHome, progress: &LearnerProgress) -> Result<(), LearnerError> {
    progress.save(home).map_err(|source| LearnerError::Io {
        what: "save",
        path: home.progress_file(),
        source,
    })
}
