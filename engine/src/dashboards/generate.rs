//! `sdlab dashboards [--check]`: `dashboards/<id>/dashboard.json` (Grafana) and
//! `dashboards/<id>/prometheus.yml` for every scenario, from [`super::charts`]; `check` lists
//! missing, different and left-over files (each naming the command), `write` makes the folder
//! what the catalog generates. The engine test `dashboards` runs `check` on the repository.

use std::path::{Path, PathBuf};

use crate::catalog::generated::{self, FileError};
use crate::catalog::Catalog;

/// The command that regenerates the folder (named in every problem `check` finds).
pub const REGENERATE: &str = "sdlab dashboards";

/// The files of one scenario's folder.
pub const FILES: [&str; 2] = ["dashboard.json", "prometheus.yml"];

/// One generated file, relative to `dashboards/`.
pub use crate::catalog::generated::Generated;

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

impl From<FileError> for DashboardsError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Read { path, source } => DashboardsError::Read { path, source },
            FileError::Write { path, source } => DashboardsError::Write { path, source },
        }
    }
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
    Ok(generated::check(
        &generate(catalog)?,
        dir,
        &FILES,
        REGENERATE,
    )?)
}

/// Writes what differs and removes left-over files; returns the paths it changed.
pub fn write(catalog: &Catalog, dir: &Path) -> Result<Vec<PathBuf>, DashboardsError> {
    Ok(generated::write(&generate(catalog)?, dir, &FILES)?)
}
