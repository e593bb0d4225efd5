//! Reset: the scenario's broken code and seeded database back, for the terminal and the
//! window alike. Refused while a live lab process holds the scenario (its service runs on the
//! code and holds the database a reset would replace); the learner's code is backed up first
//! (`workspace::reset_code`) and the editor's unsaved drafts, edits of the code just backed
//! up, are dropped.

use std::path::PathBuf;

use super::LearnerError;
use crate::catalog::Scenario;
use crate::progress::Progress;
use crate::workspace;
use crate::Lab;

/// What to reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetParts {
    pub code: bool,
    pub database: bool,
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetOutcome {
    /// Where the learner's code was copied before it was restored (None: there was none).
    pub backup: Option<PathBuf>,
    pub code_reset: bool,
    /// False when not asked for or when the scenario has no database.
    pub database_reset: bool,
}

/// Refuses with `Running` while a live lab process (this one or another: a terminal's
/// `sdlab start`, a window's server, a check under way) holds `scenario`, as its run state says.
pub fn may_reset(lab: &Lab, scenario: &Scenario) -> Result<(), LearnerError> {
    match lab.live_state(scenario) {
        Some(state) => Err(LearnerError::Running {
            scenario: scenario.id.clone(),
            owner_pid: state.owner_pid,
        }),
        None => Ok(()),
    }
}

/// Resets `parts` of `scenario` once `may_reset` allows it.
pub async fn reset(
    lab: &Lab,
    scenario: &Scenario,
    parts: ResetParts,
    progress: &Progress,
) -> Result<ResetOutcome, LearnerError> {
    may_reset(lab, scenario)?;
    let backup = if parts.code {
        let backup = workspace::reset_code(&lab.home, scenario)?;
        let drafts = lab.home.root.join("drafts").join(&scenario.id);
        if drafts.exists() {
            std::fs::remove_dir_all(&drafts).map_err(|source| LearnerError::Io {
                what: "remove",
                path: drafts.clone(),
                source,
            })?;
        }
        backup
    } else {
        None
    };
    let database_reset = parts.database && scenario.topology.postgres.is_some();
    if database_reset {
        let db = lab.database(scenario, progress).await?;
        let reset = lab.reset_database(&db).await;
        db.shutdown().await;
        reset?;
    }
    if parts.database && scenario.topology.redis.is_some() {
        // The scenario's Redis (its queues, its cache) starts empty unless the topology keeps
        // its data; a reset empties it either way: its folders go (`redis-<id>`, and the
        // check's and scratch labs' `redis-<id>-<name>`).
        let run_dir = lab.home.run_dir();
        let ours = format!("redis-{}", scenario.id);
        for entry in std::fs::read_dir(&run_dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name == ours || name.starts_with(&format!("{ours}-")) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(ResetOutcome {
        backup,
        code_reset: parts.code,
        database_reset,
    })
}
