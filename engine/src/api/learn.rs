//! The learner's endpoints over `crate::learner` (which holds the rules, shared with the
//! CLI): hints one at a time, the solution (409 before the first check unless confirmed or
//! revealed before; then SOLUTION.md and the solution's files for a side-by-side comparison)
//! and the run history. Also the guide's questions and the learner's answers to them (kept
//! in `progress.json`).
//!
//! A question is a fenced block in SCENARIO.md whose info string starts with `question`:
//!
//! ````markdown
//! ```question id=feed-p95 figure=load.p95
//! What p95 latency did your load run measure for the whole mix?
//! ---
//! The reference answer, folded until the learner has answered (markdown).
//! ```
//! ````
//!
//! `figure` binds an observation question to a number the learner's own last run measured:
//! `load.` or `check.` (the last load run or check) followed by one of `FIGURES`.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::Json;
use serde::Deserialize;

use super::model::{AnswerRequest, FileContent, HintsView, QuestionView, RunRecord, SolutionView};
use super::{ApiError, ApiState, MAX_FILE_BYTES};
use crate::catalog::Scenario;
use crate::home::LearnerProgress;
use crate::learner::{self, Hints, LearnerError};

impl From<LearnerError> for ApiError {
    fn from(e: LearnerError) -> Self {
        match e {
            LearnerError::NotTriedYet { .. } | LearnerError::Running { .. } => {
                ApiError::Conflict(e.to_string())
            }
            LearnerError::Io { what, path, source } => ApiError::Io {
                what: format!("{what} {}", path.display()),
                source,
            },
            LearnerError::Workspace(e) => ApiError::Workspace(e),
            LearnerError::Lab(e) => ApiError::Lab(e),
        }
    }
}

pub(super) async fn hints(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<HintsView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(hints_view(learner::hints(&state.lab.home, scenario))))
}

/// Reveals the next hint (the last one stays revealed).
pub(super) async fn next_hint(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<HintsView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(hints_view(learner::next_hint(
        &state.lab.home,
        scenario,
    )?)))
}

fn hints_view(hints: Hints) -> HintsView {
    HintsView {
        total: hints.total,
        shown: hints.shown,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealRequest {
    #[serde(default)]
    confirm: bool,
}

/// `POST` reveals the solution; before the first check it needs `{"confirm": true}` (409),
/// unless it was revealed before.
pub(super) async fn solution(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Json<SolutionView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let request: RevealRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RevealRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("solution body: {e}")))?
    };
    let notes = match learner::reveal_solution(&state.lab.home, &scenario, request.confirm) {
        Err(e @ LearnerError::NotTriedYet { .. }) => {
            return Err(ApiError::Conflict(format!(
                "{e}. Send {{\"confirm\": true}} to reveal it anyway"
            )))
        }
        other => other?,
    };
    let root = scenario.dir.join("solution");
    let mut files = Vec::new();
    collect_text_files(&root, &root, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Json(SolutionView { notes, files }))
}

/// `GET .../history`: the scenario's recorded runs (from the terminal or the window), oldest
/// first.
pub(super) async fn history(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Vec<RunRecord>>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(learner::history::load(&state.lab.home, &scenario.id)))
}

/// The solution's text files (the notes are returned on their own), paths relative to `root`.
fn collect_text_files(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut Vec<FileContent>,
) -> Result<(), ApiError> {
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
        } else if entry
            .metadata()
            .is_ok_and(|m| m.len() <= MAX_FILE_BYTES as u64)
        {
            if let Ok(content) = std::fs::read_to_string(&path) {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(FileContent {
                    path: rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                    content,
                });
            }
        }
    }
    Ok(())
}

/// The figures a question may be bound to: fields of the run's summary.
pub const FIGURES: &[&str] = &["p50", "p95", "p99", "max", "error_rate", "achieved_rate"];
/// The longest answer kept, in bytes.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// The questions of a guide, in order; an error names the first malformed one.
pub fn questions(guide: &str) -> Result<Vec<QuestionView>, String> {
    let mut out = Vec::new();
    for (n, line) in guide.lines().enumerate() {
        let Some(info) = line.trim_start().strip_prefix("```question") else {
            continue;
        };
        let at = || format!("SCENARIO.md line {}", n + 1);
        if !(info.is_empty() || info.starts_with(' ')) {
            continue;
        }
        let (mut id, mut figure) = (None, None);
        for pair in info.split_whitespace() {
            match pair.split_once('=') {
                Some(("id", v))
                    if !v.is_empty()
                        && v.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                {
                    id = Some(v.to_string())
                }
                Some(("figure", v)) => {
                    let valid = v.split_once('.').is_some_and(|(run, field)| {
                        matches!(run, "load" | "check") && FIGURES.contains(&field)
                    });
                    if !valid {
                        return Err(format!(
                            "{}: figure={v:?}: expected load.<field> or check.<field>, field one of {}",
                            at(),
                            FIGURES.join(", ")
                        ));
                    }
                    figure = Some(v.to_string())
                }
                _ => {
                    return Err(format!(
                    "{}: {pair:?}: expected id=<letters, digits, - or _> or figure=<run>.<field>",
                    at()
                ))
                }
            }
        }
        let id = id.ok_or_else(|| format!("{}: a question needs id=<name>", at()))?;
        if out.iter().any(|q: &QuestionView| q.id == id) {
            return Err(format!("{}: question id {id:?} is used twice", at()));
        }
        out.push(QuestionView { id, figure });
    }
    Ok(out)
}

/// The questions of `scenario`'s guide.
pub(super) fn scenario_questions(scenario: &Scenario) -> Result<Vec<QuestionView>, ApiError> {
    let guide_path = scenario.guide_path();
    let guide = std::fs::read_to_string(&guide_path).map_err(|source| ApiError::Io {
        what: format!("read {}", guide_path.display()),
        source,
    })?;
    questions(&guide).map_err(ApiError::Config)
}

/// `PUT .../answers/{question}` with `{"answer": "..."}`: saves the learner's answer.
pub(super) async fn answer(
    State(state): State<ApiState>,
    UrlPath((id, question)): UrlPath<(String, String)>,
    Json(request): Json<AnswerRequest>,
) -> Result<Json<std::collections::BTreeMap<String, String>>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    if !scenario_questions(scenario)?
        .iter()
        .any(|q| q.id == question)
    {
        return Err(ApiError::NotFound(format!(
            "{}'s guide has no question {question:?}",
            scenario.id
        )));
    }
    if request.answer.len() > MAX_ANSWER_BYTES {
        return Err(ApiError::TooLarge {
            limit: MAX_ANSWER_BYTES,
        });
    }
    let mut progress = LearnerProgress::load(&state.lab.home);
    let entry = progress.scenario(&scenario.id);
    if request.answer.trim().is_empty() {
        entry.answers.remove(&question);
    } else {
        entry.answers.insert(question, request.answer);
    }
    let answers = entry.answers.clone();
    progress
        .save(&state.lab.home)
        .map_err(|source| ApiError::Io {
            what: format!("save {}", state.lab.home.progress_file().display()),
            source,
        })?;
    Ok(Json(answers))
}

#[cfg(test)]
mod tests {
    use super::questions;

    #[test]
    fn question_blocks_give_ids_and_figures() {
        let guide = "# G\n```question id=a figure=load.p95\nQ?\n---\nA.\n```\n```rust\nfn x() {}\n```\n```question id=b\nWhy?\n```\n";
        let qs = questions(guide).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!(
            (qs[0].id.as_str(), qs[0].figure.as_deref()),
            ("a", Some("load.p95"))
        );
        assert_eq!((qs[1].id.as_str(), qs[1].figure.as_deref()), ("b", None));
    }

    #[test]
    fn malformed_questions_are_named() {
        assert!(questions("```question\nQ\n```")
            .unwrap_err()
            .contains("needs id="));
        assert!(questions("```question id=a figure=load.p42\n```")
            .unwrap_err()
            .contains("line 1"));
        assert!(questions("```question id=a\n```\n```question id=a\n```")
            .unwrap_err()
            .contains("twice"));
    }
}
