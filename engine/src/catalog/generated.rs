//! Files generated from the catalog and committed beside it, one folder per scenario
//! (`.devcontainer/<id>/`, `dashboards/<id>/`): comparing a folder with what was generated
//! (`check`: missing, different and left-over files, each naming the command that regenerates
//! them) and making it so (`write`). `devcontainer` and `dashboards` generate; this compares
//! and writes for both.

use std::path::{Path, PathBuf};

/// One generated file, relative to its folder (e.g. `t1-01/devcontainer.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: PathBuf,
    pub text: String,
}

/// A generated folder that could not be read or written.
#[derive(Debug)]
pub enum FileError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What differs between `dir` and `generated`, one line per file naming `regenerate`; the
/// files a scenario folder may hold are `names` (others in it are the author's, not checked).
pub fn check(
    generated: &[Generated],
    dir: &Path,
    names: &[&str],
    regenerate: &str,
) -> Result<Vec<String>, FileError> {
    let mut problems = Vec::new();
    for file in generated {
        let path = dir.join(&file.path);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == file.text => {}
            Ok(_) => problems.push(format!(
                "{} is not what the catalog generates: run `{regenerate}`",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("{} is missing: run `{regenerate}`", path.display()))
            }
            Err(source) => return Err(FileError::Read { path, source }),
        }
    }
    for stale in committed(dir, names)? {
        if !generated.iter().any(|g| g.path == stale) {
            problems.push(format!(
                "{} belongs to no scenario: run `{regenerate}`",
                dir.join(stale).display()
            ));
        }
    }
    Ok(problems)
}

/// Writes what differs and removes the left-over files of `names`; returns the paths it
/// changed.
pub fn write(
    generated: &[Generated],
    dir: &Path,
    names: &[&str],
) -> Result<Vec<PathBuf>, FileError> {
    let mut changed = Vec::new();
    for file in generated {
        let path = dir.join(&file.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(file.text.as_str()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| FileError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, &file.text).map_err(|source| FileError::Write {
            path: path.clone(),
            source,
        })?;
        changed.push(path);
    }
    for stale in committed(dir, names)? {
        if !generated.iter().any(|g| g.path == stale) {
            let path = dir.join(stale);
            std::fs::remove_file(&path).map_err(|source| FileError::Write {
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

/// The `<folder>/<one of names>` files present in `dir` (none when it does not exist yet).
fn committed(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>, FileError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(FileError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .flat_map(|e| {
            names
                .iter()
                .map(move |f| PathBuf::from(e.file_name()).join(f))
        })
        .filter(|rel| dir.join(rel).is_file())
        .collect();
    found.sort();
    Ok(found)
}
