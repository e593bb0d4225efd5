//! Rebuild on save from any editor: while this server runs a scenario, a file of the learner's
//! service saved outside the page (VS Code in a codespace, vim in a terminal) rebuilds and
//! restarts it with the new code, as the page's Save does. A failed start (code that did not
//! compile) is retried the same way, so the fix of a compile error is picked up too.
//!
//! The lab's `work/` folder is watched (inotify through `notify`); events are gathered per
//! scenario until the files have been quiet for [`QUIET`], so an editor's burst of writes (or
//! a `git checkout`) is one restart. A restart happens only when the service's sources differ
//! from those its last build compiled (`freshness`): the page's own Save, which restarts by
//! itself, and editors' swap and backup files never cause a second one.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::model::RunStatus;
use super::ApiState;
use crate::catalog::Scenario;
use crate::freshness::Slot;

/// How long the files must stay unchanged before the restart.
pub(super) const QUIET: Duration = Duration::from_millis(400);
/// How long a change waits for a start under way (its own build may have missed the change).
const STARTING_WAIT: Duration = Duration::from_secs(600);

/// Watches the lab's `work/` folder until the server shuts down. When the folder cannot be
/// watched (no inotify instances left, say), the page's Save still works: this says why once
/// and gives up.
pub(super) fn spawn(state: ApiState) {
    let work = state.lab.home.work_dir();
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = std::fs::create_dir_all(&work)
        .map_err(notify::Error::io)
        .and_then(|()| {
            let mut watcher =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if let Ok(event) = event {
                        if !matches!(event.kind, notify::EventKind::Access(_)) {
                            let _ = tx.send(event.paths);
                        }
                    }
                })?;
            notify::Watcher::watch(&mut watcher, &work, notify::RecursiveMode::Recursive)?;
            Ok(watcher)
        });
    match watcher {
        Ok(watcher) => {
            tokio::spawn(async move {
                // The watcher lives as long as the task reading its events.
                let _watcher = watcher;
                run(state, rx).await;
            });
        }
        Err(e) => tracing::warn!(
            "cannot watch {} for edits made outside the page ({e}); save from the page to rebuild",
            work.display()
        ),
    }
}

async fn run(state: ApiState, mut events: mpsc::UnboundedReceiver<Vec<std::path::PathBuf>>) {
    let work = state.lab.home.work_dir();
    let shutdown = state.shutdown.clone();
    loop {
        // The first change, then every further one until the files are quiet.
        let mut changed: HashSet<String> = HashSet::new();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            paths = events.recv() => match paths {
                Some(paths) => changed.extend(scenarios_of(&state, &work, &paths)),
                None => return,
            },
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(QUIET) => break,
                paths = events.recv() => match paths {
                    Some(paths) => changed.extend(scenarios_of(&state, &work, &paths)),
                    None => return,
                },
            }
        }
        for id in changed {
            let Ok(scenario) = state.lab.catalog.get(&id).cloned() else {
                continue;
            };
            let state = state.clone();
            // Its own task: waiting for a start under way must not hold back other events.
            tokio::spawn(async move { restart_if_changed(&state, scenario).await });
        }
    }
}

/// The ids of the scenarios whose service one of `paths` belongs to, leaving out build
/// output, hidden folders and editors' swap and backup files.
fn scenarios_of(state: &ApiState, work: &Path, paths: &[std::path::PathBuf]) -> Vec<String> {
    let dirs: HashMap<&str, &Scenario> = state
        .lab
        .catalog
        .scenarios
        .iter()
        .map(|s| (s.dir_name(), s))
        .collect();
    paths
        .iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(work).ok()?;
            let parts: Vec<&str> = relative
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => part.to_str(),
                    _ => None,
                })
                .collect();
            // <scenario-dir>/service/<file...>
            let (dir, rest) = parts.split_first()?;
            let (member, inside) = rest.split_first()?;
            if *member != "service" || inside.is_empty() || !counts(inside) {
                return None;
            }
            dirs.get(*dir).map(|s| s.id.clone())
        })
        .collect()
}

/// Whether a change to this path inside a service is a change to its code.
fn counts(inside: &[&str]) -> bool {
    let Some(name) = inside.last() else {
        return false;
    };
    let hidden_or_built = inside.iter().any(|p| p.starts_with('.') || *p == "target");
    let editor_file = name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.starts_with(".#")
        || *name == "4913"; // vim's probe of whether it may write here
    !hidden_or_built && !editor_file
}

/// Restarts `scenario` when this server runs it (or its last start failed) and its service's
/// sources are not the ones last built.
async fn restart_if_changed(state: &ApiState, scenario: Scenario) {
    let deadline = tokio::time::Instant::now() + STARTING_WAIT;
    loop {
        match state.runner.status(&scenario.id).await.status {
            RunStatus::Stopped => return,
            RunStatus::Starting { .. } if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            RunStatus::Starting { .. } => return,
            RunStatus::Running { .. } | RunStatus::Failed { .. } => break,
        }
    }
    let service = state.lab.home.learner_service_dir(&scenario);
    let built = Slot::new(
        &state.lab.home.work_dir(),
        &service,
        &state.lab.home.target_dir(),
        crate::build::PROFILE,
    )
    .map(|slot| slot.is_built());
    if !matches!(built, Ok(false)) {
        return;
    }
    tracing::info!(
        "{}: its code changed on disk; rebuilding and restarting",
        scenario.id
    );
    state.runner.stop(&scenario.id).await;
    if let Err(e) = state.runner.start(Arc::clone(&state.lab), scenario).await {
        tracing::warn!("restart after an edit on disk: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::counts;

    #[test]
    fn code_counts_and_build_output_hidden_folders_and_editor_files_do_not() {
        assert!(counts(&["src", "handlers.rs"]));
        assert!(counts(&["migrations", "0001_index.sql"]));
        assert!(counts(&["Cargo.toml"]));
        for ignored in [
            &["target", "lab", "x"][..],
            &[".git", "index"][..],
            &["src", ".handlers.rs.swp"][..],
            &["src", "handlers.rs~"][..],
            &["src", ".#handlers.rs"][..],
            &["src", "4913"][..],
        ] {
            assert!(!counts(ignored), "{ignored:?}");
        }
    }
}
