//! `sdlab dashboards [--check]`: `dashboards/<id>/dashboard.json` (Grafana) and
//! `dashboards/<id>/prometheus.yml` for every scenario, from [`super::charts`]; `check` lists
//! missing, different and left-over files (each naming the command), `write` makes the folder
//! what the catalog generates. The engine test `dashboards` runs `check` on the repository.

use std::path::{Path, PathBuf};

use crate::catalog::Catalog;

/// The command that regenerates the folder (named in every problem `check` finds).
pub const REGENERATE: &str = "sdlab dashboards";

/// The files of one scenario's folder.
pub const FILES: [&str; 2] = ["dashboard.json", "prometheus.yml"];

/// One generated file, relative to `dashboards/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: PathBuf,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario folder {folder} does not load ({message}); fix it before generating")]
    Broken { folder: String, message: String },
    #[error("cannot serialize {id}'s dashboard: {source}")]
    Json {
        id: String,
        source: serde_json::Error,
    },
}

/// Every scenario's files; refuses a catalog with a broken scenario rather than drop its
/// dashboard.
pub fn generate(catalog: &Catalog) -> Result<Vec<Generated>, DashboardsError> {
    if let Some((folder, message)) = catalog.broken.first() {
        return Err(DashboardsError::Broken {
            folder: folder.clone(),
            message: message.clone(),
        });
    }
    let mut out = Vec::new();
    for s in &catalog.scenarios {
        let dashboard = super::grafana::dashboard(s, &super::charts(s));
        let mut json =
            serde_json::to_string_pretty(&dashboard).map_err(|source| DashboardsError::Json {
                id: s.id.clone(),
                source,
            })?;
        json.push('\n');
        out.push(Generated {
            path: Path::new(&s.id).join(FILES[0]),
            text: json,
        });
        out.push(Generated {
            path: Path::new(&s.id).join(FILES[1]),
            text: super::prometheus::config(s, None),
        });
    }
    Ok(out)
}

/// What differs between `dir` and what the catalog generates (empty: nothing).
pub fn check(catalog: &Catalog, dir: &Path) -> Result<Vec<String>, DashboardsError> {
    let generated = generate(catalog)?;
    let mut problems = Vec::new();
    for file in &generated {
        let path = dir.join(&file.path);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == file.text => {}
            Ok(_) => problems.push(format!(
                "{} is not what the catalog generates: run `{REGENERATE}`",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("{} is missing: run `{REGENERATE}`", path.display()))
            }
            Err(source) => return Err(DashboardsError::Read { path, source }),
        }
    }
    for stale in committed(dir)? {
        if !generated.iter().any(|g| g.path == stale) {
            problems.push(format!(
                "{} belongs to no scenario: run `{REGENERATE}`",
                dir.join(stale).display()
            ));
        }
    }
    Ok(problems)
}

/// Writes what differs and removes left-over files; returns the paths it changed.
pub fn write(catalog: &Catalog, dir: &Path) -> Result<Vec<PathBuf>, DashboardsError> {
    let generated = generate(catalog)?;
    let mut changed = Vec::new();
    for file in &generated {
        let path = dir.join(&file.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(file.text.as_str()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DashboardsError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, &file.text).map_err(|source| DashboardsError::Write {
            path: path.clone(),
            source,
        })?;
        changed.push(path);
    }
    for stale in committed(dir)? {
        if !generated.iter().any(|g| g.path == stale) {
            let path = dir.join(stale);
            std::fs::remove_file(&path).map_err(|source| DashboardsError::Write {
                path: path.clone(),
                source,
            })?;
            // Only an emptied folder goes; anything else the author put there stays.
            if let Some(parent) = path.parent() {
                let _ = std::fs::remove_dir(parent);
            }
            changed.push(path);
        }
    }
    Ok(changed)
}

/// The generated files present in `dir` (`<folder>/<one of FILES>`).
fn committed(dir: &Path) -> Result<Vec<PathBuf>, DashboardsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(DashboardsError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .flat_map(|e| FILES.map(|f| PathBuf::from(e.file_name()).join(f)))
        .filter(|rel| dir.join(rel).is_file())
        .collect();
    found.sort();
    Ok(found)
}
