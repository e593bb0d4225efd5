//! Where things live: the lab's own data (`LabHome`: databases, learner workspaces, build
//! cache, run state, logs, backups) and the lab's sources (`Sources`: scenarios and kit).
//!
//! Invariant: the lab writes only under `LabHome::root` (and the build target dir, which
//! defaults to a folder inside it). Nothing is written to the source tree.

use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogError, Scenario};

/// The lab's data directory.
///
/// ```text
/// <root>/pg/<id>/            PostgreSQL cluster of a scenario (seeded once, then cached)
/// <root>/pg/<id>/replica/    its streaming replica's cluster (`replicas = 1`; kept, re-copied if stale)
/// <root>/work/               the learner's Cargo workspace: kit/ and <scenario-dir>/service/
/// <root>/scratch/<dir>/      throw-away workspace per scenario for `check --solution`/`--code`
/// <root>/target/             one shared Cargo target dir, so dependencies compile once
/// <root>/run/                state of running labs (pids, ports) for `stop` and stale clean-up
/// <root>/logs/<id>/          service logs
/// <root>/backups/            the learner's code as it was before each `reset`
/// <root>/progress.json       checks run per scenario (the solution asks before the first)
/// <root>/history/<id>.json   load runs and checks, terminal or window (`learner::history`)
/// <root>/drafts/<id>/        unsaved edits from the web UI's editor
/// ```
#[derive(Debug, Clone)]
pub struct LabHome {
    pub root: PathBuf,
    target: Option<PathBuf>,
}

impl LabHome {
    /// `$SDLAB_HOME`, else `$XDG_DATA_HOME/sdlab`, else `~/.local/share/sdlab`; as root,
    /// `/var/lib/sdlab` (PostgreSQL refuses to run as root, so the lab runs it as `nobody`,
    /// who cannot enter root's home).
    /// `$SDLAB_TARGET_DIR` overrides the build target dir (tests share one across homes).
    pub fn from_env() -> LabHome {
        // SAFETY: geteuid has no preconditions.
        let root_user = unsafe { libc::geteuid() } == 0;
        let root = std::env::var_os("SDLAB_HOME")
            .map(PathBuf::from)
            .or_else(|| root_user.then(|| PathBuf::from("/var/lib/sdlab")))
            .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("sdlab")))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/sdlab"))
            })
            .unwrap_or_else(|| std::env::temp_dir().join("sdlab"));
        LabHome {
            root,
            target: std::env::var_os("SDLAB_TARGET_DIR").map(PathBuf::from),
        }
    }

    pub fn at(root: impl Into<PathBuf>) -> LabHome {
        LabHome {
            root: root.into(),
            target: None,
        }
    }

    pub fn with_target_dir(mut self, target: impl Into<PathBuf>) -> LabHome {
        self.target = Some(target.into());
        self
    }

    pub fn cluster_dir(&self, scenario: &Scenario) -> PathBuf {
        self.root.join("pg").join(&scenario.id)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    pub fn scratch_dir(&self) -> PathBuf {
        self.root.join("scratch")
    }

    pub fn target_dir(&self) -> PathBuf {
        self.target
            .clone()
            .unwrap_or_else(|| self.root.join("target"))
    }

    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    pub fn logs_dir(&self, scenario: &Scenario) -> PathBuf {
        self.root.join("logs").join(&scenario.id)
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("backups")
    }

    pub fn progress_file(&self) -> PathBuf {
        self.root.join("progress.json")
    }

    /// The learner's copy of a scenario's service.
    pub fn learner_service_dir(&self, scenario: &Scenario) -> PathBuf {
        self.work_dir().join(scenario.dir_name()).join("service")
    }
}

/// The lab's sources: the `scenarios/` folder (with the kit) and the root manifest whose
/// dependency versions, lints and `lab` profile the learner's workspace inherits.
#[derive(Debug, Clone)]
pub struct Sources {
    pub root: PathBuf,
}

impl Sources {
    /// `$SDLAB_ROOT`; else an installed copy beside the running program (`<prefix>/bin/x` ->
    /// `<prefix>/share/sdlab` as the .deb lays it out, or the bundle's resources); else the
    /// source tree this engine was built from.
    pub fn from_env() -> Sources {
        let installed = || {
            let exe = std::env::current_exe().ok()?;
            let bin = exe.parent()?;
            [
                bin.parent()?.join("share/sdlab"),     // .deb, AppImage, a prefix
                bin.join("sdlab"),                     // Windows (.msi resources)
                bin.parent()?.join("Resources/sdlab"), // macOS (.app resources)
            ]
            .into_iter()
            .find(|dir| dir.join("scenarios").is_dir())
        };
        let root = std::env::var_os("SDLAB_ROOT")
            .map(PathBuf::from)
            .or_else(installed)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."))
            });
        Sources { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Sources {
        Sources { root: root.into() }
    }

    pub fn scenarios_dir(&self) -> PathBuf {
        self.root.join("scenarios")
    }

    pub fn kit_dir(&self) -> PathBuf {
        self.scenarios_dir().join("kit")
    }

    pub fn manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    pub fn lockfile(&self) -> PathBuf {
        self.root.join("Cargo.lock")
    }

    /// Crates for the services' first build without a network (`cargo vendor` output), shipped
    /// by the desktop package; absent in a source checkout.
    pub fn vendor_dir(&self) -> PathBuf {
        self.root.join("vendor")
    }

    /// The built web UI.
    pub fn ui_dir(&self) -> PathBuf {
        self.root.join("ui/dist")
    }

    pub fn catalog(&self) -> Result<Catalog, CatalogError> {
        Catalog::load(&self.scenarios_dir())
    }
}

/// What the learner has done per scenario, kept in `progress.json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LearnerProgress {
    #[serde(default)]
    pub scenarios: std::collections::BTreeMap<String, ScenarioProgress>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ScenarioProgress {
    pub checks_run: u32,
    pub passed: bool,
    pub solution_revealed: bool,
    /// How many of the scenario's hints the learner has seen (`sdlab hint` shows the next).
    #[serde(default)]
    pub hints_shown: u32,
    /// The learner's answers to the guide's questions, by question id (see `api::learn`).
    #[serde(default)]
    pub answers: std::collections::BTreeMap<String, String>,
}

impl LearnerProgress {
    pub fn load(home: &LabHome) -> LearnerProgress {
        std::fs::read(home.progress_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, home: &LabHome) -> std::io::Result<()> {
        std::fs::create_dir_all(&home.root)?;
        let tmp = home.progress_file().with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, home.progress_file())
    }

    pub fn scenario(&mut self, id: &str) -> &mut ScenarioProgress {
        self.scenarios.entry(id.to_string()).or_default()
    }
}
