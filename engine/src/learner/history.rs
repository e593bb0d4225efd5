//! The run history: a record of each finished load run and check of the learner's code, per
//! scenario, in `<home>/history/<id>.json` (newest last, at most `MAX_RUNS`), whichever front
//! end ran it. The window overlays the previous run on its charts ("before" vs "after") and
//! reads the figures the guide's observation questions are bound to from here.
//!
//! Records are kept in the shape the window reads (`api::RunRecord`, part of the UI's
//! contract in `api/model.rs`), so the file is served as it is, with no second format.

use std::path::PathBuf;

use crate::api::RunRecord;
use crate::home::LabHome;

/// Runs kept per scenario; older ones are dropped.
const MAX_RUNS: usize = 50;

/// The history file of scenario `id`.
pub fn path(home: &LabHome, id: &str) -> PathBuf {
    home.root.join("history").join(format!("{id}.json"))
}

/// The runs recorded for `id`, oldest first (none when the file is missing or unreadable).
pub fn load(home: &LabHome, id: &str) -> Vec<RunRecord> {
    std::fs::read(path(home, id))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Appends `run` to `id`'s history (atomically: temp file, then rename).
pub(super) fn record(home: &LabHome, id: &str, run: RunRecord) -> std::io::Result<()> {
    let mut runs = load(home, id);
    runs.push(run);
    let skip = runs.len().saturating_sub(MAX_RUNS);
    let file = path(home, id);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(&runs[skip..]).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, file)
}
