//! Finds redis-server: `$SDLAB_REDIS_BIN`, then Debian's `/usr/bin/redis-server`, then `$PATH`.
//!
//! The path is kept as found, never canonicalized: Debian's `/usr/bin/redis-server` is a
//! symlink to `redis-check-rdb`, and the program picks its mode from the name it was run by.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::Error;

/// The redis-server binary this machine has.
///
/// # Errors
/// [`Error::NotFound`], naming every place looked at and how to install redis-server.
pub fn find_binary() -> Result<PathBuf, Error> {
    find_binary_in(
        std::env::var_os("SDLAB_REDIS_BIN"),
        Path::new("/usr/bin/redis-server"),
        std::env::var_os("PATH"),
    )
}

/// [`find_binary`] with its inputs given: the override, the system path and `$PATH`.
///
/// An override that names a missing file is an error, not a reason to look elsewhere: the
/// user asked for that binary.
///
/// # Errors
/// [`Error::NotFound`].
pub fn find_binary_in(
    over: Option<OsString>,
    system: &Path,
    path: Option<OsString>,
) -> Result<PathBuf, Error> {
    if let Some(over) = over.filter(|o| !o.is_empty()) {
        let over = PathBuf::from(over);
        if is_executable(&over) {
            return Ok(over);
        }
        return Err(Error::NotFound {
            tried: format!("SDLAB_REDIS_BIN={}", over.display()),
        });
    }
    if is_executable(system) {
        return Ok(system.to_path_buf());
    }
    for dir in std::env::split_paths(&path.unwrap_or_default()) {
        let candidate = dir.join("redis-server");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::NotFound {
        tried: format!("SDLAB_REDIS_BIN (unset), {}, $PATH", system.display()),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
