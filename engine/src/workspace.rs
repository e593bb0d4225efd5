//! The learner's workspace: the scenario's `service/` copied out of the source tree into a
//! Cargo workspace the lab owns, next to a copy of the kit, so edits never touch the sources
//! and every scenario builds into one shared target dir.
//!
//! Two workspace roots share the layout `<root>/kit` + `<root>/<scenario-dir>/<member>`, which
//! keeps the services' `path = "../../kit"` dependency valid:
//! - `work/`: the learner's code (`service/`), copied once and never overwritten;
//! - `scratch/<scenario-dir>/`: code the lab checks on the learner's behalf (`solution/`, or
//!   any folder given to `check --code`), replaced on every use; one workspace per scenario so
//!   concurrent checks of different scenarios never rewrite each other's manifest or lock file.
//!
//! Each root's `Cargo.toml` is the source tree's root manifest with its members replaced, so
//! dependency versions, lints and the `lab` build profile are the same as in the repository.
//! Invariant: the learner's `service/` is only ever replaced by `reset`, which backs it up first.

use std::path::{Path, PathBuf};

use crate::catalog::Scenario;
use crate::home::{LabHome, Sources};

/// Which code to run.
#[derive(Debug, Clone)]
pub enum CodeSource {
    /// The learner's copy of `service/` (created from the scenario on first use).
    Learner,
    /// The scenario's `solution/`, copied into the scratch workspace.
    Solution,
    /// Any folder holding a service package (tests use it for alternative fixes).
    Dir(PathBuf),
    /// One of the scenario's `fixes/<name>.toml`, applied to its base (golden tests, authors).
    Fix(String),
}

impl CodeSource {
    pub fn label(&self) -> String {
        match self {
            CodeSource::Learner => "your code".to_string(),
            CodeSource::Solution => "the solution".to_string(),
            CodeSource::Dir(p) => format!("the code in {}", p.display()),
            CodeSource::Fix(name) => format!("the fix {name:?}"),
        }
    }
}

/// Code ready to build: its Cargo workspace, package and folder.
#[derive(Debug, Clone)]
pub struct PreparedCode {
    pub workspace_root: PathBuf,
    pub package: String,
    pub dir: PathBuf,
}

impl PreparedCode {
    pub fn migrations_dir(&self) -> PathBuf {
        self.dir.join("migrations")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    #[error(transparent)]
    Fix(#[from] crate::catalog::fixes::FixError),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError {
    let path = path.to_path_buf();
    move |source| WorkspaceError::Io { what, path, source }
}

/// Makes `source`'s code ready to build and says where it is.
pub fn prepare(
    home: &LabHome,
    sources: &Sources,
    scenario: &Scenario,
    source: &CodeSource,
) -> Result<PreparedCode, WorkspaceError> {
    match source {
        CodeSource::Learner => {
            let root = home.work_dir();
            let dir = home.learner_service_dir(scenario);
            if !dir.join("Cargo.toml").is_file() {
                copy_tree(&scenario.dir.join("service"), &dir)?;
            }
            write_workspace(sources, &root, "*/service")?;
            Ok(PreparedCode {
                workspace_root: root,
                package: package_name(&dir.join("Cargo.toml"))?,
                dir,
            })
        }
        CodeSource::Solution => {
            prepare_scratch(home, sources, scenario, &scenario.dir.join("solution"))
        }
        CodeSource::Dir(path) => prepare_scratch(home, sources, scenario, path),
        CodeSource::Fix(name) => {
            let fix = crate::catalog::fixes::find_fix(&scenario.dir, name)?;
            // Staged apart, then synced like any folder: only files that differ are
            // rewritten in the scratch workspace, so the build reuses what it can.
            let staged = home.scratch_dir().join(".fix").join(scenario.dir_name());
            materialize_fix(&fix, &scenario.dir, &staged)?;
            prepare_scratch(home, sources, scenario, &staged)
        }
    }
}

fn prepare_scratch(
    home: &LabHome,
    sources: &Sources,
    scenario: &Scenario,
    from: &Path,
) -> Result<PreparedCode, WorkspaceError> {
    // One Cargo workspace per scenario, so checking one scenario's code never rewrites the
    // manifest, kit or lock file another scenario's check is building from.
    // The layout inside stays `<root>/kit` + `<root>/<scenario-dir>/code` (see the module doc).
    let root = home.scratch_dir().join(scenario.dir_name());
    remove_shared_scratch_layout(&home.scratch_dir(), &root);
    let dir = root.join(scenario.dir_name()).join("code");
    sync_tree(from, &dir)?;
    write_workspace(sources, &root, &format!("{}/code", scenario.dir_name()))?;
    Ok(PreparedCode {
        workspace_root: root,
        package: package_name(&dir.join("Cargo.toml"))?,
        dir,
    })
}

/// Before scratch workspaces were per scenario, `scratch/` itself was one workspace with
/// `<scenario-dir>/code` members. Its leftovers are throw-away; remove them.
fn remove_shared_scratch_layout(scratch: &Path, root: &Path) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        let _ = std::fs::remove_file(scratch.join(file));
    }
    let _ = std::fs::remove_dir_all(scratch.join("kit"));
    let _ = std::fs::remove_dir_all(root.join("code"));
}

/// Puts the learner's code back to the scenario's broken `service/`, keeping the current
/// version under `backups/<scenario-dir>-<timestamp>/`. Returns the backup's path (None when
/// there was nothing to back up).
pub fn reset_code(home: &LabHome, scenario: &Scenario) -> Result<Option<PathBuf>, WorkspaceError> {
    let dir = home.learner_service_dir(scenario);
    let backup = if dir.exists() {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S%.3f");
        let backup = home
            .backups_dir()
            .join(format!("{}-{stamp}", scenario.dir_name()));
        copy_tree(&dir, &backup)?;
        std::fs::remove_dir_all(&dir).map_err(io("cannot remove", &dir))?;
        Some(backup)
    } else {
        None
    };
    copy_tree(&scenario.dir.join("service"), &dir)?;
    Ok(backup)
}

/// Writes `<root>/Cargo.toml` (the sources' root manifest with `members` replaced), keeps the
/// kit in sync and seeds `Cargo.lock` from the sources so versions match the repository.
fn write_workspace(sources: &Sources, root: &Path, members: &str) -> Result<(), WorkspaceError> {
    let manifest_path = sources.manifest();
    let text =
        std::fs::read_to_string(&manifest_path).map_err(io("cannot read", &manifest_path))?;
    let mut manifest: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| WorkspaceError::Manifest {
                path: manifest_path.clone(),
                message: e.to_string(),
            })?;
    let Some(toml::Value::Table(workspace)) = manifest.get_mut("workspace") else {
        return Err(WorkspaceError::Manifest {
            path: manifest_path,
            message: "expected a [workspace] section".to_string(),
        });
    };
    workspace.insert(
        "members".to_string(),
        toml::Value::Array(vec!["kit".into(), members.into()]),
    );
    workspace.remove("exclude");
    workspace.remove("default-members");
    // The lab's own crates are not part of a learner's workspace.
    if let Some(toml::Value::Table(deps)) = workspace.get_mut("dependencies") {
        deps.retain(|_, v| !matches!(v, toml::Value::Table(t) if t.contains_key("path")));
    }
    let generated = format!(
        "# Generated by System Design Lab from its root Cargo.toml; rewritten at every start.\n{}",
        toml::to_string(&manifest).map_err(|e| WorkspaceError::Manifest {
            path: root.join("Cargo.toml"),
            message: e.to_string(),
        })?
    );
    std::fs::create_dir_all(root).map_err(io("cannot create", root))?;
    write_if_changed(&root.join("Cargo.toml"), generated.as_bytes())?;
    sync_tree(&sources.kit_dir(), &root.join("kit"))?;
    let lock = root.join("Cargo.lock");
    if !lock.exists() && sources.lockfile().is_file() {
        std::fs::copy(sources.lockfile(), &lock).map_err(io("cannot copy Cargo.lock to", &lock))?;
    }
    write_cargo_config(sources, root)?;
    refresh_lock_for_vendored(sources, root)
}

/// Vendored crates are exactly those of the sources' `Cargo.lock`; a workspace lock from
/// other sources (an earlier package, a checkout) may name versions that are not vendored, and
/// cargo then cannot build offline. So when the sources ship crates and their lock changed
/// since it was last copied (its bytes are kept in `.sdlab-source.lock`), copy it again.
fn refresh_lock_for_vendored(sources: &Sources, root: &Path) -> Result<(), WorkspaceError> {
    if !sources.vendor_dir().is_dir() || !sources.lockfile().is_file() {
        return Ok(());
    }
    let wanted =
        std::fs::read(sources.lockfile()).map_err(io("cannot read", &sources.lockfile()))?;
    let seen = root.join(".sdlab-source.lock");
    if std::fs::read(&seen).ok().as_deref() != Some(wanted.as_slice()) {
        write_if_changed(&root.join("Cargo.lock"), &wanted)?;
        write_if_changed(&seen, &wanted)?;
    }
    Ok(())
}

/// Where the sources ship vendored crates (the desktop package), `<root>/.cargo/config.toml`
/// points crates.io at them, so the first build needs no network, from the lab or from a
/// terminal in the workspace. Without them, any such file the lab wrote earlier is removed.
fn write_cargo_config(sources: &Sources, root: &Path) -> Result<(), WorkspaceError> {
    let config = root.join(".cargo/config.toml");
    let vendor = sources.vendor_dir();
    if !vendor.is_dir() {
        if std::fs::read_to_string(&config).is_ok_and(|t| t.starts_with(CARGO_CONFIG_MARK)) {
            std::fs::remove_file(&config).map_err(io("cannot remove", &config))?;
        }
        return Ok(());
    }
    let text = format!(
        "{CARGO_CONFIG_MARK}\n[source.crates-io]\nreplace-with = \"sdlab-vendored\"\n\n\
         [source.sdlab-vendored]\ndirectory = {}\n",
        toml::Value::String(vendor.display().to_string())
    );
    write_if_changed(&config, text.as_bytes()).map(|_| ())
}

/// The first line of a `.cargo/config.toml` the lab wrote (and may rewrite or remove).
const CARGO_CONFIG_MARK: &str =
    "# Written by System Design Lab: build from the crates it ships (no network needed).";

/// The `[package] name` of a manifest.
fn package_name(manifest: &Path) -> Result<String, WorkspaceError> {
    let text = std::fs::read_to_string(manifest).map_err(io("cannot read", manifest))?;
    let table: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| WorkspaceError::Manifest {
                path: manifest.to_path_buf(),
                message: e.to_string(),
            })?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| WorkspaceError::Manifest {
            path: manifest.to_path_buf(),
            message: "expected [package] name = \"...\"".to_string(),
        })
}

/// Copies a folder (skipping build output and editor litter). Copies keep their source's
/// mtime, so code compiled before in another workspace is not compiled again (`freshness`).
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), WorkspaceError> {
    std::fs::create_dir_all(to).map_err(io("cannot create", to))?;
    for entry in std::fs::read_dir(from).map_err(io("cannot read", from))? {
        let entry = entry.map_err(io("cannot read", from))?;
        let name = entry.file_name();
        if skipped(&name) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io("cannot copy to", &dst))?;
            crate::freshness::keep_mtime(&src, &dst);
        }
    }
    Ok(())
}

/// Writes a fix's code into `into` (emptied first): a copy of its base (unchanged files keep
/// their original's mtime, so builds reuse what they compiled), then its recipe.
pub fn materialize_fix(
    fix: &crate::catalog::fixes::Fix,
    scenario_dir: &Path,
    into: &Path,
) -> Result<(), WorkspaceError> {
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(io("cannot remove", into))?;
    }
    copy_tree(&fix.base_dir(scenario_dir), into)?;
    Ok(fix.apply_to(scenario_dir, into)?)
}

/// Makes `to` an exact copy of `from`, writing only files whose bytes differ so Cargo's
/// mtime-based fingerprints see no change where there is none (written files keep their
/// source's mtime; `freshness` makes Cargo rebuild what changed).
pub fn sync_tree(from: &Path, to: &Path) -> Result<(), WorkspaceError> {
    std::fs::create_dir_all(to).map_err(io("cannot create", to))?;
    let mut wanted = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(from).map_err(io("cannot read", from))? {
        let entry = entry.map_err(io("cannot read", from))?;
        let name = entry.file_name();
        if skipped(&name) {
            continue;
        }
        wanted.insert(name.clone());
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            if dst.is_file() {
                std::fs::remove_file(&dst).map_err(io("cannot remove", &dst))?;
            }
            sync_tree(&src, &dst)?;
        } else {
            if dst.is_dir() {
                std::fs::remove_dir_all(&dst).map_err(io("cannot remove", &dst))?;
            }
            let bytes = std::fs::read(&src).map_err(io("cannot read", &src))?;
            if write_if_changed(&dst, &bytes)? {
                crate::freshness::keep_mtime(&src, &dst);
            }
        }
    }
    for entry in std::fs::read_dir(to).map_err(io("cannot read", to))? {
        let entry = entry.map_err(io("cannot read", to))?;
        if !wanted.contains(&entry.file_name()) && !skipped(&entry.file_name()) {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io("cannot remove", &path))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` unless it holds them already; returns whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, WorkspaceError> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    std::fs::write(path, bytes).map_err(io("cannot write", path))?;
    Ok(true)
}

fn skipped(name: &std::ffi::OsStr) -> bool {
    matches!(name.to_str(), Some("target" | ".git" | "Cargo.lock"))
        || name.to_string_lossy().ends_with('~')
}
