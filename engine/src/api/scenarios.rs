//! The catalog as the sidebar and the guide pane see it, plus reset and log tails.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;

use super::model::{ChartView, LogsView, ResetRequest, ResetView, ScenarioDetail, ScenarioSummary};
use super::{ApiError, ApiState};
use crate::catalog::codespaces;
use crate::home::LearnerProgress;
use crate::learner;
use crate::progress::Progress;

/// The most log lines one call returns.
const MAX_LOG_LINES: usize = 2000;
/// How much of a log file the stream reads at once.
const TAIL_BYTES: u64 = crate::logview::TAIL_BYTES;

pub(super) async fn list(State(state): State<ApiState>) -> Json<Vec<ScenarioSummary>> {
    let progress = LearnerProgress::load(&state.lab.home);
    let repository = codespaces::repository(&state.lab.sources.manifest());
    Json(
        state
            .lab
            .catalog
            .scenarios
            .iter()
            .map(|s| ScenarioSummary::new(s, progress.scenarios.get(&s.id), repository.as_deref()))
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
        summary: ScenarioSummary::new(
            scenario,
            progress.scenarios.get(&scenario.id),
            codespaces::repository(&state.lab.sources.manifest()).as_deref(),
        ),
        guide,
        hints: scenario.hints.len(),
        instances: scenario.topology.instances,
        workers: scenario.topology.workers.map_or(0, |w| w.count),
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
        charts: crate::dashboards::charts(scenario)
            .iter()
            .map(ChartView::from)
            .collect(),
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
    /// A worker's log instead of an instance's (`[topology.workers]`).
    worker: Option<u32>,
    lines: Option<usize>,
    /// Only the lines of the request with this ID (`request_id` of a JSON line).
    request: Option<String>,
}

/// The log file `query` names: instance N's (`?instance=N`, default 1) or worker N's
/// (`?worker=N`), checked against the scenario's topology.
fn log_file(
    lab: &crate::lab::Lab,
    scenario: &crate::catalog::Scenario,
    query: &LogsQuery,
) -> Result<std::path::PathBuf, ApiError> {
    let dir = lab.home.logs_dir(scenario);
    if let Some(worker) = query.worker {
        let count = scenario.topology.workers.map_or(0, |w| w.count);
        if query.instance.is_some() {
            return Err(ApiError::BadRequest(
                "ask for an instance's log or a worker's, not both".to_string(),
            ));
        }
        if worker == 0 || worker > count {
            return Err(ApiError::BadRequest(match count {
                0 => format!("worker {worker}: {} has no workers", scenario.id),
                n => format!("worker {worker}: {} has workers 1 to {n}", scenario.id),
            }));
        }
        return Ok(dir.join(format!("worker-{worker}.log")));
    }
    let instance = query.instance.unwrap_or(1);
    if instance == 0 || instance > scenario.topology.instances {
        return Err(ApiError::BadRequest(format!(
            "instance {instance}: {} has instances 1 to {}",
            scenario.id, scenario.topology.instances
        )));
    }
    Ok(dir.join(format!("service-{instance}.log")))
}

/// The last lines of an instance's or a worker's log (`?instance=1&lines=200`, `?worker=2`,
/// `&request=ID` for one request's lines), raw and parsed, from its log file, so it works
/// while the service runs and after it stopped or crashed.
pub(super) async fn logs(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<LogsView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let path = log_file(&state.lab, scenario, &query)?;
    let instance = query.instance.unwrap_or(1);
    let n = query.lines.unwrap_or(200).min(MAX_LOG_LINES);
    let request = query.request.as_deref().filter(|r| !r.trim().is_empty());
    let entries = crate::logview::tail(&path, n, request).map_err(|source| ApiError::Io {
        what: format!("read {}", path.display()),
        source,
    })?;
    Ok(Json(LogsView {
        instance,
        worker: query.worker,
        lines: entries.iter().map(|e| e.raw.clone()).collect(),
        entries,
    }))
}

/// How often the log stream looks for new lines.
const LOG_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET .../logs/stream?instance=1&lines=200[&request=ID]` (or `?worker=N`): server-sent events, a `lines`
/// event (JSON array of strings) and an `entries` event (the same lines parsed, see
/// `logview::LogEntry`) with the tail, then both whenever the log grows (by lines of that
/// request only, with `request`). A log that shrinks was started afresh (a restart) and is
/// read again from its start.
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
    let request = query.request.clone().filter(|r| !r.trim().is_empty());
    let path = log_file(&state.lab, state.lab.catalog.get(&id)?, &query)?;
    let Json(first) = logs(State(state.clone()), UrlPath(id.clone()), Query(query)).await?;
    let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let shutdown = state.shutdown.clone();
    let initial = Some(first.entries);
    let stream = futures_util::stream::unfold(
        (path, offset, String::new(), initial, shutdown),
        move |(path, mut offset, mut partial, initial, shutdown)| {
            let request = request.clone();
            async move {
                if let Some(entries) = initial {
                    let events = entries_events(&entries);
                    return Some((events, (path, offset, partial, None, shutdown)));
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
                    let complete =
                        crate::logview::select(partial[..end].lines(), request.as_deref());
                    partial.drain(..=end);
                    if !complete.is_empty() {
                        return Some((
                            entries_events(&complete),
                            (path, offset, partial, None, shutdown),
                        ));
                    }
                }
            }
        },
    )
    .flat_map(futures_util::stream::iter);
    Ok(axum::response::sse::Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default()))
}

/// The `lines` event (the raw lines) and the `entries` event (the same lines parsed).
fn entries_events(
    entries: &[crate::logview::LogEntry],
) -> Vec<Result<axum::response::sse::Event, std::convert::Infallible>> {
    let raw: Vec<&str> = entries.iter().map(|e| e.raw.as_str()).collect();
    let event = |name: &str, data: Result<axum::response::sse::Event, axum::Error>| {
        Ok(data.unwrap_or_else(|_| {
            axum::response::sse::Event::default()
                .event("error")
                .data(format!("cannot encode the log {name}"))
        }))
    };
    vec![
        event(
            "lines",
            axum::response::sse::Event::default()
                .event("lines")
                .json_data(&raw),
        ),
        event(
            "entries",
            axum::response::sse::Event::default()
                .event("entries")
                .json_data(entries),
        ),
    ]
}

/// The bytes of `path` from `offset` on (at most `TAIL_BYTES`).
fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}
