//! The catalog as the sidebar and the guide pane see it, plus reset and log tails.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::Json;
use serde::Deserialize;

use super::model::{LogsView, ResetRequest, ResetView, ScenarioDetail, ScenarioSummary};
use super::{ApiError, ApiState};
use crate::home::LearnerProgress;
use crate::learner;
use crate::progress::Progress;

/// The most log lines one call returns.
const MAX_LOG_LINES: usize = 2000;
/// How much of the end of a log file is read for a tail.
const TAIL_BYTES: u64 = 512 * 1024;

pub(super) async fn list(State(state): State<ApiState>) -> Json<Vec<ScenarioSummary>> {
    let progress = LearnerProgress::load(&state.lab.home);
    Json(
        state
            .lab
            .catalog
            .scenarios
            .iter()
            .map(|s| ScenarioSummary::new(s, progress.scenarios.get(&s.id)))
            .collect(),
    )
}

pub(super) async fn detail(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ScenarioDetail>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let progress = LearnerProgress::load(&state.lab.home);
    let guide_path = scenario.guide_path();
    let guide = std::fs::read_to_string(&guide_path).map_err(|source| ApiError::Io {
        what: format!("read {}", guide_path.display()),
        source,
    })?;
    let questions = super::learn::questions(&guide).map_err(ApiError::Config)?;
    Ok(Json(ScenarioDetail {
        summary: ScenarioSummary::new(scenario, progress.scenarios.get(&scenario.id)),
        guide,
        hints: scenario.hints.len(),
        instances: scenario.topology.instances,
        postgres: scenario.topology.postgres.is_some(),
        redis: scenario.topology.redis.is_some(),
        replica: scenario
            .topology
            .postgres
            .as_ref()
            .is_some_and(|pg| pg.replicas > 0),
        profiles: scenario.profiles.keys().cloned().collect(),
        questions,
        panels: scenario.panels.clone(),
    }))
}

/// Restores the broken code (backed up first; the editor's drafts are dropped) and the seeded
/// database, by `learner::reset` (refused while a lab runs the scenario). The body is optional:
/// `{"code": false}` or `{"database": false}` resets only the other.
pub(super) async fn reset(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Result<Json<ResetView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let request: ResetRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResetRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("reset body: {e}")))?
    };
    // A start of this server's that has not recorded its run state yet is running too.
    if state.runner.is_active(&scenario.id).await {
        return Err(learner::LearnerError::Running {
            scenario: scenario.id,
            owner_pid: std::process::id(),
        }
        .into());
    }
    let parts = learner::ResetParts {
        code: request.code,
        database: request.database,
    };
    let lab = Arc::clone(&state.lab);
    // The database's futures (sqlx) are not provably Send: see `on_own_runtime`.
    let outcome = super::on_own_runtime("reset", move || async move {
        learner::reset(&lab, &scenario, parts, &Progress::none()).await
    })
    .await??;
    Ok(Json(ResetView {
        backup: outcome.backup.map(|p| p.display().to_string()),
        code_reset: outcome.code_reset,
        database_reset: outcome.database_reset,
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct LogsQuery {
    instance: Option<u32>,
    lines: Option<usize>,
}

/// The last lines of an instance's log (`?instance=1&lines=200`), from its log file, so it
/// works while the service runs and after it stopped or crashed.
pub(super) async fn logs(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<LogsView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let instance = query.instance.unwrap_or(1);
    if instance == 0 || instance > scenario.topology.instances {
        return Err(ApiError::BadRequest(format!(
            "instance {instance}: {} has instances 1 to {}",
            scenario.id, scenario.topology.instances
        )));
    }
    let n = query.lines.unwrap_or(200).min(MAX_LOG_LINES);
    let path = state
        .lab
        .home
        .logs_dir(scenario)
        .join(format!("service-{instance}.log"));
    let lines = match std::fs::File::open(&path) {
        Ok(file) => tail(file, n).map_err(|source| ApiError::Io {
            what: format!("read {}", path.display()),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(ApiError::Io {
                what: format!("open {}", path.display()),
                source,
            })
        }
    };
    Ok(Json(LogsView { instance, lines }))
}

/// The last `n` lines of `file`, reading at most `TAIL_BYTES` from its end.
fn tail(mut file: std::fs::File, n: usize) -> std::io::Result<Vec<String>> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut in the middle.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..].iter().map(|l| l.to_string()).collect())
}

/// How often the log stream looks for new lines.
const LOG_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET .../logs/stream?instance=1&lines=200`: server-sent events, a `lines` event (JSON
/// array of strings) with the tail, then one whenever the log grows. A log that shrinks was
/// started afresh (a restart) and is read again from its start.
pub(super) async fn logs_stream(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<LogsQuery>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    let Json(first) = logs(State(state.clone()), UrlPath(id.clone()), Query(query)).await?;
    let scenario = state.lab.catalog.get(&id)?;
    let path = state
        .lab
        .home
        .logs_dir(scenario)
        .join(format!("service-{}.log", first.instance));
    let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let shutdown = state.shutdown.clone();
    let initial = Some(first.lines);
    let stream = futures_util::stream::unfold(
        (path, offset, String::new(), initial, shutdown),
        |(path, mut offset, mut partial, initial, shutdown)| async move {
            if let Some(lines) = initial {
                let event = lines_event(&lines);
                return Some((Ok(event), (path, offset, partial, None, shutdown)));
            }
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(LOG_POLL) => {}
                }
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if len < offset {
                    offset = 0;
                    partial.clear();
                }
                if len == offset {
                    continue;
                }
                let Ok(chunk) = read_from(&path, offset) else {
                    continue;
                };
                offset += chunk.len() as u64;
                partial.push_str(&String::from_utf8_lossy(&chunk));
                let Some(end) = partial.rfind('\n') else {
                    continue;
                };
                let complete: Vec<String> = partial[..end].lines().map(str::to_string).collect();
                partial.drain(..=end);
                if !complete.is_empty() {
                    return Some((
                        Ok(lines_event(&complete)),
                        (path, offset, partial, None, shutdown),
                    ));
                }
            }
        },
    );
    Ok(axum::response::sse::Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default()))
}

fn lines_event(lines: &[String]) -> axum::response::sse::Event {
    axum::response::sse::Event::default()
        .event("lines")
        .json_data(lines)
        .unwrap_or_else(|_| {
            axum::response::sse::Event::default()
                .event("error")
                .data("cannot encode the log lines")
        })
}

/// The bytes of `path` from `offset` on (at most `TAIL_BYTES`).
fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}
