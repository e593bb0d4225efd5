//! `sdlab devcontainers`: one GitHub Codespaces configuration per scenario,
//! `.devcontainer/<id>/devcontainer.json`, generated from the catalog so that a new scenario
//! gets its own "open this lesson in a codespace" entry by running one command, and a test
//! (engine/tests/it/devcontainer.rs) fails when the committed files drift from the catalog.
//!
//! Every configuration builds the one hand-written `.devcontainer/Dockerfile`, builds the lab in
//! `postCreateCommand` (install.sh, prebuilding only its scenario), starts `sdlab serve` on
//! [`PORT`] in `postStartCommand` through the hand-written `.devcontainer/serve.sh` (the
//! forwarded port's name allowed; the page's address with its token written out), and opens
//! the scenario's guide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Catalog;

/// The port `sdlab serve` listens on inside a codespace. Fixed, because the configuration
/// forwards and labels it before the server starts; unusual, so no scenario's service (the lab
/// picks free ports for those) is likely to hold it first.
pub const PORT: u16 = 8790;

/// The command that rewrites the files, named in every drift problem.
pub const REGENERATE: &str = "sdlab devcontainers";

/// The file name GitHub looks for in each `.devcontainer/<folder>/`.
const FILE: &str = "devcontainer.json";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DevContainer {
    name: String,
    build: Build,
    remote_env: BTreeMap<String, String>,
    post_create_command: String,
    post_start_command: String,
    forward_ports: Vec<u16>,
    ports_attributes: BTreeMap<String, PortAttributes>,
    customizations: Customizations,
}

#[derive(Serialize)]
struct Build {
    dockerfile: String,
    context: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortAttributes {
    label: String,
    on_auto_forward: String,
}

#[derive(Serialize)]
struct Customizations {
    codespaces: Codespaces,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Codespaces {
    open_files: Vec<String>,
}

/// One generated file: its path under `.devcontainer/` and its exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: PathBuf,
    pub text: String,
}

/// Why the committed files are not what the catalog generates.
#[derive(Debug, thiserror::Error)]
pub enum DevcontainerError {
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
    #[error("cannot serialize {id}'s configuration: {source}")]
    Json {
        id: String,
        source: serde_json::Error,
    },
}

/// Every scenario's configuration, in catalog order. A scenario that does not load is an error:
/// leaving it out would silently drop its codespace.
pub fn generate(catalog: &Catalog) -> Result<Vec<Generated>, DevcontainerError> {
    if let Some((folder, message)) = catalog.broken.first() {
        return Err(DevcontainerError::Broken {
            folder: folder.clone(),
            message: message.clone(),
        });
    }
    catalog
        .scenarios
        .iter()
        .map(|s| {
            let config = config(&s.id, &s.title, s.dir_name());
            let mut text = serde_json::to_string_pretty(&config).map_err(|source| {
                DevcontainerError::Json {
                    id: s.id.clone(),
                    source,
                }
            })?;
            text.push('\n');
            Ok(Generated {
                path: PathBuf::from(&s.id).join(FILE),
                text,
            })
        })
        .collect()
}

fn config(id: &str, title: &str, folder: &str) -> DevContainer {
    DevContainer {
        name: format!("{id} {title}"),
        // The Dockerfile is shared; its context is the repository (it copies two scripts).
        build: Build {
            dockerfile: "../Dockerfile".to_string(),
            context: "../..".to_string(),
        },
        // The name the browser uses for the forwarded port, from the variables Codespaces sets
        // in the container; `sdlab serve` refuses any other Host than 127.0.0.1 unless allowed.
        // serve.sh reads both; SDLAB_PORT keeps its port the one forwarded below.
        remote_env: BTreeMap::from([
            (
                "SDLAB_FORWARDED_HOST".to_string(),
                format!(
                    "${{containerEnv:CODESPACE_NAME}}-{PORT}.${{containerEnv:GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN}}"
                ),
            ),
            ("SDLAB_PORT".to_string(), PORT.to_string()),
        ]),
        // install.sh builds sdlab and the web UI and compiles this scenario's service
        // (`sdlab prebuild`), so the learner's first start only seeds its database.
        post_create_command: format!("SDLAB_PREBUILD={id} ./install.sh"),
        // .devcontainer/serve.sh starts `sdlab serve` in the background (its own session:
        // Codespaces ends the command's shell) and writes the page's address, token included,
        // to /tmp/sdlab-url: the browser Codespaces opens on the port has no token.
        post_start_command: format!("bash .devcontainer/serve.sh {id}"),
        forward_ports: vec![PORT],
        ports_attributes: BTreeMap::from([(
            PORT.to_string(),
            PortAttributes {
                label: "System Design Lab".to_string(),
                on_auto_forward: "openBrowser".to_string(),
            },
        )]),
        customizations: Customizations {
            codespaces: Codespaces {
                open_files: vec![format!("scenarios/{folder}/SCENARIO.md")],
            },
        },
    }
}

/// What differs between the generated files and those under `devcontainer_dir`: one line per
/// missing, different or left-over `<folder>/devcontainer.json`, each naming the command that
/// fixes it. Empty when they match.
pub fn check(catalog: &Catalog, devcontainer_dir: &Path) -> Result<Vec<String>, DevcontainerError> {
    let generated = generate(catalog)?;
    let mut problems = Vec::new();
    for file in &generated {
        let path = devcontainer_dir.join(&file.path);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == file.text => {}
            Ok(_) => problems.push(format!(
                "{} is not what the catalog generates: run `{REGENERATE}`",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                problems.push(format!("{} is missing: run `{REGENERATE}`", path.display()))
            }
            Err(source) => return Err(DevcontainerError::Read { path, source }),
        }
    }
    for stale in committed(devcontainer_dir)? {
        if !generated.iter().any(|g| g.path == stale) {
            problems.push(format!(
                "{} belongs to no scenario: run `{REGENERATE}`",
                devcontainer_dir.join(stale).display()
            ));
        }
    }
    Ok(problems)
}

/// Writes every generated file under `devcontainer_dir` and removes the configurations of
/// scenarios that are gone. Returns the files written or removed.
pub fn write(
    catalog: &Catalog,
    devcontainer_dir: &Path,
) -> Result<Vec<PathBuf>, DevcontainerError> {
    let generated = generate(catalog)?;
    let mut changed = Vec::new();
    for file in &generated {
        let path = devcontainer_dir.join(&file.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(file.text.as_str()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DevcontainerError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, &file.text).map_err(|source| DevcontainerError::Write {
            path: path.clone(),
            source,
        })?;
        changed.push(path);
    }
    for stale in committed(devcontainer_dir)? {
        if !generated.iter().any(|g| g.path == stale) {
            let path = devcontainer_dir.join(stale);
            std::fs::remove_file(&path).map_err(|source| DevcontainerError::Write {
                path: path.clone(),
                source,
            })?;
            // The folder held only the configuration; anything else in it stays, and so does it.
            if let Some(parent) = path.parent() {
                let _ = std::fs::remove_dir(parent);
            }
            changed.push(path);
        }
    }
    Ok(changed)
}

/// The `<folder>/devcontainer.json` files present, relative to `devcontainer_dir` (none when it
/// does not exist yet).
fn committed(devcontainer_dir: &Path) -> Result<Vec<PathBuf>, DevcontainerError> {
    let entries = match std::fs::read_dir(devcontainer_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(DevcontainerError::Read {
                path: devcontainer_dir.to_path_buf(),
                source,
            })
        }
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| PathBuf::from(e.file_name()).join(FILE))
        .filter(|rel| devcontainer_dir.join(rel).is_file())
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_command_serves_the_scenario_on_the_forwarded_port_by_its_forwarded_name() {
        let json = serde_json::to_value(config("t1-01", "Diagnosing Failures", "t1-01-x"))
            .unwrap_or_default();
        let start = json["postStartCommand"].as_str().unwrap_or_default();
        assert_eq!(start, "bash .devcontainer/serve.sh t1-01");
        let host = json["remoteEnv"]["SDLAB_FORWARDED_HOST"]
            .as_str()
            .unwrap_or_default();
        assert!(host.contains(&format!("-{PORT}.")), "{host}");
        assert_eq!(json["forwardPorts"][0], PORT);
        assert_eq!(
            json["customizations"]["codespaces"]["openFiles"][0],
            "scenarios/t1-01-x/SCENARIO.md"
        );
    }
}
