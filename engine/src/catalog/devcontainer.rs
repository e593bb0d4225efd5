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

pub use super::generated::Generated;
use super::generated::{self, FileError};
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

impl From<FileError> for DevcontainerError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Read { path, source } => DevcontainerError::Read { path, source },
            FileError::Write { path, source } => DevcontainerError::Write { path, source },
        }
    }
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
    Ok(generated::check(
        &generate(catalog)?,
        devcontainer_dir,
        &[FILE],
        REGENERATE,
    )?)
}

/// Writes every generated file under `devcontainer_dir` and removes the configurations of
/// scenarios that are gone. Returns the files written or removed.
pub fn write(
    catalog: &Catalog,
    devcontainer_dir: &Path,
) -> Result<Vec<PathBuf>, DevcontainerError> {
    Ok(generated::write(
        &generate(catalog)?,
        devcontainer_dir,
        &[FILE],
    )?)
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
