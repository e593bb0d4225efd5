//! The scenario's life over HTTP: `start`, `stop`, `restart` and `status`, which also reports
//! a lab that another sdlab process runs (a terminal's `sdlab start`), read from its run state,
//! so the page follows the lab whoever started it. The runner (`runner.rs`) does the work.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;

use super::model::{RunStatus, StatusView};
use super::{ApiError, ApiState};
use crate::catalog::Scenario;
use crate::topology::Lab;

pub(super) async fn start(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<StatusView>), ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let view = state.runner.start(Arc::clone(&state.lab), scenario).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

pub(super) async fn stop(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<StatusView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    Ok(Json(state.runner.stop(&scenario.id).await))
}

pub(super) async fn status(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<StatusView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let mut view = state.runner.status(&scenario.id).await;
    if view.status == RunStatus::Stopped {
        if let Some((pid, status)) = elsewhere(&state.lab, scenario) {
            view.status = status;
            view.owner_pid = Some(pid);
        }
    }
    Ok(Json(view))
}

/// The lab another sdlab process runs for `scenario` (a terminal's `sdlab start`), read from
/// its run state file: starting while only its database is up, failed when a service it lists
/// has exited, else running.
fn elsewhere(lab: &Lab, scenario: &Scenario) -> Option<(u32, RunStatus)> {
    let state = lab
        .live_state(scenario)
        .filter(|s| s.owner_pid != std::process::id())?;
    let pid = state.owner_pid;
    let dead = state.services.iter().find(|s| {
        !crate::process::alive(s.pid) || crate::process::start_time(s.pid) != s.start_time
    });
    let status = if state.services.is_empty() {
        RunStatus::Starting {
            step: Some("database up; no service yet".to_string()),
        }
    } else if let Some(svc) = dead {
        RunStatus::Failed {
            error: format!(
                "the service (instance {}) exited in the lab sdlab pid {pid} runs; its log is in the Logs tab",
                svc.instance
            ),
            diagnostics: None,
        }
    } else {
        let urls: Vec<String> = state
            .services
            .iter()
            .map(|s| format!("http://127.0.0.1:{}", s.port))
            .collect();
        RunStatus::Running {
            url: urls[0].clone(),
            entry: state.nginx_url.clone().unwrap_or_else(|| urls[0].clone()),
            urls,
            cpu_limit: None,
        }
    };
    Some((pid, status))
}

/// `POST .../restart`: stop, then start again: how a saved edit reaches the running service
/// (rebuild, migrations, restart). 202 with the new start's status.
pub(super) async fn restart(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<(StatusCode, Json<StatusView>), ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    state.runner.stop(&scenario.id).await;
    let view = state.runner.start(Arc::clone(&state.lab), scenario).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{start_time, RunState, ServiceState};
    use crate::{LabHome, Sources};
    use std::process::Command;

    #[test]
    fn a_lab_another_process_owns_is_read_from_its_run_state() {
        let home = tempfile::tempdir().unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let lab = Lab::new(LabHome::at(home.path()), Sources::at(repo)).unwrap();
        let scenario = lab.catalog.get("t1-01").unwrap().clone();
        assert_eq!(elsewhere(&lab, &scenario), None, "nothing runs it");
        // Stand-ins for a terminal's `sdlab start` and the service it started.
        let mut owner = Command::new("sleep").arg("60").spawn().unwrap();
        let mut service = Command::new("sleep").arg("60").spawn().unwrap();
        let path = RunState::path(&lab.home.run_dir(), &scenario.id);
        let mut state = RunState {
            scenario: scenario.id.clone(),
            owner_pid: owner.id(),
            owner_start_time: start_time(owner.id()),
            postgres_url: None,
            postmaster_pid: None,
            replica_url: None,
            replica_pid: None,
            services: Vec::new(),
            workers: Vec::new(),
            nginx_url: None,
            redis_url: None,
            metrics_port: None,
        };
        state.write(&path).unwrap();
        let starting = elsewhere(&lab, &scenario);
        assert!(
            matches!(starting, Some((pid, RunStatus::Starting { .. })) if pid == owner.id()),
            "database only: {starting:?}"
        );
        state.services = vec![ServiceState {
            pid: service.id(),
            start_time: start_time(service.id()),
            port: 45999,
            instance: 1,
        }];
        state.write(&path).unwrap();
        let running = elsewhere(&lab, &scenario);
        assert!(
            matches!(&running, Some((_, RunStatus::Running { entry, urls, .. }))
                if entry == "http://127.0.0.1:45999" && urls.len() == 1),
            "{running:?}"
        );
        service.kill().unwrap();
        service.wait().unwrap();
        let crashed = elsewhere(&lab, &scenario);
        assert!(
            matches!(&crashed, Some((_, RunStatus::Failed { error, .. })) if error.contains("instance 1) exited")),
            "{crashed:?}"
        );
        owner.kill().unwrap();
        owner.wait().unwrap();
        assert_eq!(elsewhere(&lab, &scenario), None, "its owner is gone");
        // This server's own run state is the runner's business, not "elsewhere".
        state.owner_pid = std::process::id();
        state.owner_start_time = start_time(std::process::id());
        state.write(&path).unwrap();
        assert_eq!(elsewhere(&lab, &scenario), None, "owned by this process");
    }
}
