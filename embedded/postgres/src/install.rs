//! Builds the installation dir the crate runs tools from: links to the real tools, or, as root,
//! wrappers that drop privileges (initdb and postgres refuse to run as root).

use crate::Error;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The user the server's processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAs {
    /// Not root: run the tools as ourselves, through plain links.
    CurrentUser,
    /// Root: run the tools as this unprivileged uid/gid through `setpriv` wrappers.
    Dropped { uid: u32, gid: u32 },
}

impl RunAs {
    /// Who runs the server for the data dir `data_dir`: ourselves unless we are root; as root the
    /// owner of an existing non-root data dir, else `nobody`.
    pub(crate) fn for_data_dir(data_dir: &Path) -> RunAs {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return RunAs::CurrentUser;
        }
        match std::fs::metadata(data_dir) {
            Ok(meta) if meta.uid() != 0 => RunAs::Dropped {
                uid: meta.uid(),
                gid: meta.gid(),
            },
            _ => nobody(),
        }
    }

    /// Gives `path` to the server's user (a no-op for `CurrentUser`).
    pub(crate) fn give(&self, path: &Path) -> Result<(), Error> {
        match *self {
            RunAs::CurrentUser => Ok(()),
            RunAs::Dropped { uid, gid } => std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(Error::io("chown", path)),
        }
    }

    /// Checks that the server's user can traverse every ancestor of `dir`.
    pub(crate) fn check_reachable(&self, dir: &Path) -> Result<(), Error> {
        let RunAs::Dropped { uid, .. } = *self else {
            return Ok(());
        };
        for ancestor in dir.ancestors().skip(1) {
            let meta = std::fs::metadata(ancestor).map_err(Error::io("inspect", ancestor))?;
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 && meta.uid() != uid {
                return Err(Error::Unreachable {
                    path: ancestor.to_path_buf(),
                    mode: mode & 0o7777,
                    uid,
                });
            }
        }
        Ok(())
    }
}

/// `nobody:nogroup` from /etc/passwd, or 65534:65534.
fn nobody() -> RunAs {
    let from_passwd = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            let line = passwd.lines().find(|l| l.starts_with("nobody:"))?;
            let mut fields = line.split(':').skip(2);
            Some(RunAs::Dropped {
                uid: fields.next()?.parse().ok()?,
                gid: fields.next()?.parse().ok()?,
            })
        });
    from_passwd.unwrap_or(RunAs::Dropped {
        uid: 65534,
        gid: 65534,
    })
}

/// (Re)creates `install_dir/bin` with one entry per executable in `real_bin`: a symlink, or as
/// root a two-line `setpriv` wrapper. Returns `install_dir`, which the crate trusts as is.
///
/// Why wrappers rather than spawning the tools ourselves as another uid: `postgresql_embedded`
/// spawns `initdb` and `pg_ctl` itself, so the only hook it offers is the installation dir.
pub(crate) fn prepare(
    install_dir: &Path,
    real_bin: &Path,
    run_as: RunAs,
) -> Result<PathBuf, Error> {
    let bin = install_dir.join("bin");
    if bin.exists() {
        std::fs::remove_dir_all(&bin).map_err(Error::io("remove old install links", &bin))?;
    }
    std::fs::create_dir_all(&bin).map_err(Error::io("create directory", &bin))?;
    let setpriv = match run_as {
        RunAs::CurrentUser => None,
        RunAs::Dropped { .. } => Some(
            ["/usr/bin/setpriv", "/bin/setpriv"]
                .into_iter()
                .map(Path::new)
                .find(|p| p.is_file())
                .ok_or(Error::SetprivMissing)?,
        ),
    };
    // Resolve links so pg_ctl and initdb find `postgres` and the share dir next to the real files.
    let real_bin = real_bin
        .canonicalize()
        .map_err(Error::io("resolve", real_bin))?;
    for entry in std::fs::read_dir(&real_bin).map_err(Error::io("list", &real_bin))? {
        let entry = entry.map_err(Error::io("list", &real_bin))?;
        let meta = entry
            .metadata()
            .map_err(Error::io("inspect", entry.path()))?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            continue;
        }
        let target = bin.join(entry.file_name());
        match (setpriv, run_as) {
            (Some(setpriv), RunAs::Dropped { uid, gid }) => {
                let script = format!(
                    "#!/bin/sh\nexec {} --reuid={uid} --regid={gid} --clear-groups {} \"$@\"\n",
                    sh_quote(&setpriv.to_string_lossy()),
                    sh_quote(&entry.path().to_string_lossy()),
                );
                std::fs::write(&target, script).map_err(Error::io("write wrapper", &target))?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                    .map_err(Error::io("chmod", &target))?;
            }
            _ => std::os::unix::fs::symlink(entry.path(), &target)
                .map_err(Error::io("link", &target))?,
        }
    }
    Ok(install_dir.to_path_buf())
}

/// Quotes `value` for /bin/sh (single quotes; a quote inside becomes `'\''`).
pub(crate) fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quote_escapes_single_quotes() {
        assert_eq!(sh_quote("a'b c"), r"'a'\''b c'");
    }
}
