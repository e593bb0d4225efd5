//! The learner's service folder over HTTP: its tree, reading a file, saving one.
//!
//! Every path comes from the URL and is confined by [`confine`] before any file is touched:
//! relative only, no `..`, and whatever symlinks it goes through must resolve inside the
//! service folder. Saves are atomic (a temp file in the same folder, then a rename), so a
//! crash or a full disk never leaves the learner with half a file.
//!
//! Drafts: the editor keeps each unsaved edit under `<home>/drafts/<id>/<path>` (same
//! confinement), so it survives a page reload and a restart of the lab (a new `sdlab serve`
//! is a new port, so the browser's own storage would not carry over). Saving drops the draft.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State};
use axum::Json;

use super::model::{EditorFile, FileKind, FileNode, FileSaved, FileTree};
use super::{ApiError, ApiState, MAX_FILE_BYTES};
use crate::catalog::Scenario;
use crate::workspace::{self, CodeSource};

/// Folders the tree leaves out: build output and version control.
const HIDDEN: &[&str] = &["target", ".git"];

pub(super) async fn tree(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<FileTree>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let root = learner_dir(&state, &scenario)?;
    let canonical = canonical_root(&root)?;
    let entries = walk(&canonical, &canonical)?;
    Ok(Json(FileTree {
        root: root.display().to_string(),
        entries,
    }))
}

pub(super) async fn read(
    State(state): State<ApiState>,
    UrlPath((id, path)): UrlPath<(String, String)>,
) -> Result<Json<EditorFile>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let root = learner_dir(&state, &scenario)?;
    let file = confine(&root, &path)?;
    let draft = read_draft(&state, &scenario, &path)?;
    let meta = match std::fs::metadata(&file) {
        Ok(meta) => meta,
        // A new file the learner has not saved yet exists only as a draft.
        Err(_) if draft.is_some() => {
            return Ok(Json(EditorFile {
                path,
                content: String::new(),
                draft,
            }))
        }
        Err(_) => {
            return Err(ApiError::NotFound(format!(
                "no file {path:?} in your service"
            )))
        }
    };
    if !meta.is_file() {
        return Err(ApiError::BadRequest(format!(
            "{path:?} is a folder, not a file"
        )));
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(ApiError::TooLarge {
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(&file).map_err(|source| ApiError::Io {
        what: format!("read {}", file.display()),
        source,
    })?;
    let content = String::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest(format!("{path:?} is not a UTF-8 text file")))?;
    Ok(Json(EditorFile {
        path,
        content,
        draft,
    }))
}

/// `PUT` with the file's new text as the raw body.
pub(super) async fn save(
    State(state): State<ApiState>,
    UrlPath((id, path)): UrlPath<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FileSaved>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let root = learner_dir(&state, &scenario)?;
    let file = confine(&root, &path)?;
    let body = body.map_err(|e| match e.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge {
            limit: MAX_FILE_BYTES,
        },
        _ => ApiError::BadRequest(format!("cannot read the body: {e}")),
    })?;
    if std::str::from_utf8(&body).is_err() {
        return Err(ApiError::BadRequest(
            "the body is not UTF-8 text".to_string(),
        ));
    }
    if file.is_dir() {
        return Err(ApiError::BadRequest(format!(
            "{path:?} is a folder, not a file"
        )));
    }
    write_atomically(&file, &body)?;
    let draft = drafts_dir(&state, &scenario)?.join(
        file.strip_prefix(canonical_root(&root)?)
            .unwrap_or(Path::new("")),
    );
    if draft.is_file() {
        let _ = std::fs::remove_file(draft);
    }
    Ok(Json(FileSaved {
        path,
        bytes: body.len(),
    }))
}

/// `PUT .../drafts/{*path}`: keeps the editor's unsaved text for `path` (raw body).
pub(super) async fn save_draft(
    State(state): State<ApiState>,
    UrlPath((id, path)): UrlPath<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FileSaved>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    // The path must be one the learner could save.
    confine(&learner_dir(&state, &scenario)?, &path)?;
    let body = body.map_err(|_| ApiError::TooLarge {
        limit: MAX_FILE_BYTES,
    })?;
    if std::str::from_utf8(&body).is_err() {
        return Err(ApiError::BadRequest(
            "the body is not UTF-8 text".to_string(),
        ));
    }
    let file = confine(&drafts_dir(&state, &scenario)?, &path)?;
    if file.is_dir() {
        return Err(ApiError::BadRequest(format!(
            "{path:?} is a folder, not a file"
        )));
    }
    write_atomically(&file, &body)?;
    Ok(Json(FileSaved {
        path,
        bytes: body.len(),
    }))
}

/// `DELETE .../drafts/{*path}`: drops the unsaved text (the learner discarded it).
pub(super) async fn discard_draft(
    State(state): State<ApiState>,
    UrlPath((id, path)): UrlPath<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let file = confine(&drafts_dir(&state, &scenario)?, &path)?;
    if file.is_file() {
        std::fs::remove_file(&file).map_err(|source| ApiError::Io {
            what: format!("remove {}", file.display()),
            source,
        })?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

fn drafts_dir(state: &ApiState, scenario: &Scenario) -> Result<PathBuf, ApiError> {
    let dir = state.lab.home.root.join("drafts").join(&scenario.id);
    std::fs::create_dir_all(&dir).map_err(|source| ApiError::Io {
        what: format!("create {}", dir.display()),
        source,
    })?;
    Ok(dir)
}

fn read_draft(
    state: &ApiState,
    scenario: &Scenario,
    path: &str,
) -> Result<Option<String>, ApiError> {
    let file = confine(&drafts_dir(state, scenario)?, path)?;
    Ok(std::fs::read(&file)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok()))
}

/// The learner's service folder, copied from the scenario on first use.
fn learner_dir(state: &ApiState, scenario: &Scenario) -> Result<PathBuf, ApiError> {
    let dir = state.lab.home.learner_service_dir(scenario);
    if !dir.join("Cargo.toml").is_file() {
        workspace::prepare(
            &state.lab.home,
            &state.lab.sources,
            scenario,
            &CodeSource::Learner,
        )?;
    }
    Ok(dir)
}

fn canonical_root(root: &Path) -> Result<PathBuf, ApiError> {
    root.canonicalize().map_err(|source| ApiError::Io {
        what: format!("resolve {}", root.display()),
        source,
    })
}

/// Resolves `rel` (a path from the URL) inside `root`, or says why it may not be used:
/// absolute paths, `..` and symlinks that lead outside `root` are refused (400). The file
/// itself need not exist (a save may create it); its deepest existing ancestor is resolved
/// and must lie inside `root`.
pub(super) fn confine(root: &Path, rel: &str) -> Result<PathBuf, ApiError> {
    let refuse = |why: &str| ApiError::BadRequest(format!("path {rel:?}: {why}"));
    if rel.is_empty() {
        return Err(refuse("empty"));
    }
    if rel.contains('\0') {
        return Err(refuse("contains a NUL byte"));
    }
    let mut clean = PathBuf::new();
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(refuse(
                    "`..` is not allowed; paths are relative to your service folder",
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse(
                    "absolute paths are not allowed; paths are relative to your service folder",
                ))
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(refuse("names no file"));
    }
    let root = canonical_root(root)?;
    let wanted = root.join(&clean);
    // The deepest part of the path that exists, resolved through any symlinks.
    let mut existing = wanted.as_path();
    let resolved = loop {
        match existing.canonicalize() {
            Ok(p) => break p,
            Err(_) => match existing.parent() {
                Some(parent) => existing = parent,
                None => return Err(refuse("cannot be resolved")),
            },
        }
    };
    if !resolved.starts_with(&root) {
        return Err(refuse(
            "leads outside your service folder (through a symlink)",
        ));
    }
    let rest = wanted.strip_prefix(existing).unwrap_or(Path::new(""));
    // Below the resolved part nothing exists, unless it is a dangling symlink: a write
    // through one could land anywhere.
    let mut below = existing.to_path_buf();
    for part in rest.components() {
        below.push(part);
        if below.symlink_metadata().is_ok() {
            return Err(refuse("goes through a symlink to nothing"));
        }
    }
    if rest.as_os_str().is_empty() {
        // `join("")` would add a trailing slash, which a file's path must not have.
        return Ok(resolved);
    }
    if !resolved.is_dir() {
        return Err(refuse("goes through a file as if it were a folder"));
    }
    Ok(resolved.join(rest))
}

/// Writes `bytes` to `file` through a temp file in the same folder and a rename.
fn write_atomically(file: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    let io = |what: String| move |source| ApiError::Io { what, source };
    let dir = file
        .parent()
        .ok_or_else(|| ApiError::BadRequest(format!("{} has no folder", file.display())))?;
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.sdlab-tmp",
        super::new_token().get(..12).unwrap_or("tmp")
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(file) {
            f.set_permissions(meta.permissions())?;
        }
        std::fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io(format!("save {}", file.display())))
}

/// The tree under `dir`, folders first, each sorted by name. Symlinks are listed only when
/// they resolve inside `root`.
fn walk(root: &Path, dir: &Path) -> Result<Vec<FileNode>, ApiError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ApiError::Io {
        what: format!("list {}", dir.display()),
        source,
    })?;
    let mut nodes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if HIDDEN.contains(&name.as_str()) || name.ends_with(".sdlab-tmp") {
            continue;
        }
        let path = entry.path();
        let Ok(resolved) = path.canonicalize() else {
            continue;
        };
        if !resolved.starts_with(root) {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .map(|p| {
                p.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_else(|_| name.clone());
        let Ok(meta) = std::fs::metadata(&resolved) else {
            continue;
        };
        let node = if meta.is_dir() {
            // A symlink to a folder inside the root would list its contents twice; list it
            // as an entry only.
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            FileNode {
                name,
                path: rel,
                kind: FileKind::Dir,
                size: None,
                children: if is_link {
                    Vec::new()
                } else {
                    walk(root, &path)?
                },
            }
        } else {
            FileNode {
                name,
                path: rel,
                kind: FileKind::File,
                size: Some(meta.len()),
                children: Vec::new(),
            }
        };
        nodes.push(node);
    }
    nodes.sort_by(|a, b| {
        (a.kind != FileKind::Dir, &a.name).cmp(&(b.kind != FileKind::Dir, &b.name))
    });
    Ok(nodes)
}
