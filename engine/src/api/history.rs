//! Run history: a summary of each load run and check the API ran, per scenario, in
//! `<home>/history/<id>.json` (newest last, at most `MAX_RUNS`). The UI overlays the previous
//! run on the charts ("before" vs "after") and reads the figures the guide's observation
//! questions are bound to (the last load run's p95...) from here.

use axum::extract::{Path as UrlPath, State};
use axum::Json;

use super::model::RunRecord;
use super::{ApiError, ApiState};
use crate::home::LabHome;

/// Runs kept per scenario; older ones are dropped.
const MAX_RUNS: usize = 50;

fn path(home: &LabHome, id: &str) -> std::path::PathBuf {
    home.root.join("history").join(format!("{id}.json"))
}

/// The runs recorded for `id`, oldest first (none when the file is missing or unreadable).
pub(super) fn load(home: &LabHome, id: &str) -> Vec<RunRecord> {
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

/// `GET .../history`: the scenario's recorded runs, oldest first.
pub(super) async fn list(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Vec<RunRecord>>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(load(&state.lab.home, &scenario.id)))
}

/// Seconds since the Unix epoch, for `RunRecord::finished_at`.
pub(super) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
