//! Hints and the solution: hints are revealed one at a time and remembered in
//! `progress.json`; the solution asks for confirmation before the learner has run a check
//! (trying first is where the learning is), then returns SOLUTION.md and the solution's files
//! for a side-by-side comparison.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::Json;
use serde::Deserialize;

use super::model::{FileContent, HintsView, SolutionView};
use super::{ApiError, ApiState, MAX_FILE_BYTES};
use crate::catalog::Scenario;
use crate::home::LearnerProgress;

pub(super) async fn hints(State(state): State<ApiState>, UrlPath(id): UrlPath<String>) -> Result<Json<HintsView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let mut progress = LearnerProgress::load(&state.lab.home);
    let shown = progress.scenario(&scenario.id).hints_shown as usize;
    Ok(Json(hints_view(scenario, shown)))
}

/// Reveals the next hint (the last one stays revealed).
pub(super) async fn next_hint(State(state): State<ApiState>, UrlPath(id): UrlPath<String>) -> Result<Json<HintsView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let mut progress = LearnerProgress::load(&state.lab.home);
    let entry = progress.scenario(&scenario.id);
    if (entry.hints_shown as usize) < scenario.hints.len() {
        entry.hints_shown += 1;
    }
    let shown = entry.hints_shown as usize;
    save(&state, &progress)?;
    Ok(Json(hints_view(scenario, shown)))
}

fn hints_view(scenario: &Scenario, shown: usize) -> HintsView {
    HintsView {
        total: scenario.hints.len(),
        shown: scenario.hints.iter().take(shown).cloned().collect(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealRequest {
    #[serde(default)]
    confirm: bool,
}

/// `POST` reveals the solution; before the first check it needs `{"confirm": true}` (409).
pub(super) async fn solution(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Json<SolutionView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let request: RevealRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RevealRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("solution body: {e}")))?
    };
    let mut progress = LearnerProgress::load(&state.lab.home);
    let entry = progress.scenario(&scenario.id);
    if entry.checks_run == 0 && !entry.solution_revealed && !request.confirm {
        return Err(ApiError::Conflict(format!(
            "you have not run a check on {} yet; trying first is where the learning is. Send {{\"confirm\": true}} to reveal it anyway",
            scenario.id
        )));
    }
    entry.solution_revealed = true;
    save(&state, &progress)?;
    let notes_path = scenario.solution_notes_path();
    let notes = std::fs::read_to_string(&notes_path).map_err(|source| ApiError::Io {
        what: format!("read {}", notes_path.display()),
        source,
    })?;
    let root = scenario.dir.join("solution");
    let mut files = Vec::new();
    collect_text_files(&root, &root, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Json(SolutionView { notes, files }))
}

fn save(state: &ApiState, progress: &LearnerProgress) -> Result<(), ApiError> {
    progress.save(&state.lab.home).map_err(|source| ApiError::Io {
        what: format!("save {}", state.lab.home.progress_file().display()),
        source,
    })
}

/// The solution's text files (the notes are returned on their own), paths relative to `root`.
fn collect_text_files(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<FileContent>) -> Result<(), ApiError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ApiError::Io {
        what: format!("list {}", dir.display()),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(name.to_str(), Some("target" | ".git" | "SOLUTION.md")) {
            continue;
        }
        if path.is_dir() {
            collect_text_files(root, &path, out)?;
        } else if entry.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES as u64) {
            if let Ok(content) = std::fs::read_to_string(&path) {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(FileContent {
                    path: rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
                    content,
                });
            }
        }
    }
    Ok(())
}
