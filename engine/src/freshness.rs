//! Makes Cargo's mtime-based freshness safe, and useful, across the lab's workspaces.
//!
//! Every workspace the lab generates has the same layout (`kit`, `<scenario-dir>/service` or
//! `<scenario-dir>/code`), and Cargo names a path package's artifacts after its path *relative
//! to the workspace root*. So in one target dir, the learner's and the scratch workspace share
//! the kit's artifacts, and every lab home sharing a target dir (tests, benches) shares them
//! all: a new home reuses what another compiled, if Cargo believes the sources unchanged.
//!
//! Cargo believes that when the source files are older than the last build of that package
//! path, whichever workspace it came from. Alone, that could run another workspace's code: a
//! copy made before someone else built an edited version looks "older" than that build. So
//! the lab keeps, per target dir and package path, a digest of the sources last built there
//! (`<target>/.sdlab-sources/`). Before each build, a package whose sources differ from that
//! digest gets its files' mtimes set to now, and Cargo rebuilds it; one whose sources match
//! keeps its mtimes (copies keep their source's mtime, like `cp -p`), and Cargo reuses it.
//! Builds hold the target dir's build lock, so digests and artifacts change together.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One local package of a workspace, as Cargo's artifacts and the lab's digests see it.
///
/// Only the package's files are digested: what else goes into a build (dependency versions
/// and features, the profile, the toolchain) is in Cargo's own fingerprint, which rebuilds
/// when it changes. Mtimes are the one thing Cargo cannot be trusted with here.
#[derive(Debug)]
pub struct Slot {
    dir: PathBuf,
    record: PathBuf,
    /// The package's files, read before the build.
    digest: String,
}

impl Slot {
    /// `package_dir` inside `workspace_root`, built into `target_dir` with `profile`.
    pub fn new(
        workspace_root: &Path,
        package_dir: &Path,
        target_dir: &Path,
        profile: &str,
    ) -> std::io::Result<Slot> {
        let relative = package_dir
            .strip_prefix(workspace_root)
            .unwrap_or(package_dir);
        Ok(Slot {
            dir: package_dir.to_path_buf(),
            record: target_dir
                .join(".sdlab-sources")
                .join(profile)
                .join(relative.to_string_lossy().replace(['/', '\\'], "%")),
            digest: digest_tree(package_dir)?,
        })
    }

    /// Before building: when the sources are not what was last built here, their mtimes are
    /// set to now (so Cargo rebuilds) and the old record is removed (a build that does not
    /// finish leaves no claim behind).
    pub fn prepare(&self) -> std::io::Result<()> {
        if self.is_built() {
            return Ok(());
        }
        match std::fs::remove_file(&self.record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        touch_tree(&self.dir, SystemTime::now())
    }

    /// Whether these sources are the ones last built here (nothing to rebuild).
    pub fn is_built(&self) -> bool {
        std::fs::read_to_string(&self.record).ok().as_deref() == Some(self.digest.as_str())
    }

    /// After a successful build: these sources (as read before it) are what the target dir
    /// now holds. A file saved during the build differs from them, so it is rebuilt next time.
    pub fn record(&self) -> std::io::Result<()> {
        if let Some(parent) = self.record.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&self.record, &self.digest)
    }
}

/// FNV-1a over every file's relative path and bytes, in name order.
pub fn digest_tree(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)?;
    files.sort();
    let mut hash = Fnv::new();
    for relative in files {
        // A dangling symlink has no bytes; its name still counts.
        let bytes = match std::fs::read(dir.join(&relative)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            read => read?,
        };
        hash.feed(relative.to_string_lossy().as_bytes());
        hash.feed(&(bytes.len() as u64).to_le_bytes());
        hash.feed(&bytes);
    }
    Ok(hash.hex())
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == "target" {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list_files(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

fn touch_tree(dir: &Path, when: SystemTime) -> std::io::Result<()> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)?;
    for relative in files {
        let path = dir.join(relative);
        if path.is_symlink() {
            continue; // its target is not the workspace's to touch
        }
        std::fs::File::options()
            .write(true)
            .open(path)?
            .set_modified(when)?;
    }
    Ok(())
}

/// Gives `copy` the mtime of `original` (best effort: a copy that keeps a newer mtime is only
/// rebuilt when it need not be).
pub fn keep_mtime(original: &Path, copy: &Path) {
    if let Ok(modified) = std::fs::metadata(original).and_then(|m| m.modified()) {
        if let Ok(file) = std::fs::File::options().write(true).open(copy) {
            let _ = file.set_modified(modified);
        }
    }
}

/// FNV-1a, 64 bits: a stable digest (the same across runs and Rust versions) for records on
/// disk, here and in the seed's fingerprint.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_content_and_names_not_mtimes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").expect("write");
        let first = digest_tree(dir.path()).expect("digest");
        touch_tree(dir.path(), SystemTime::UNIX_EPOCH).expect("touch");
        assert_eq!(digest_tree(dir.path()).expect("digest"), first);
        std::fs::write(dir.path().join("src/main.rs"), "fn main() { }").expect("write");
        assert_ne!(digest_tree(dir.path()).expect("digest"), first);
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").expect("write");
        assert_eq!(digest_tree(dir.path()).expect("digest"), first);
        std::fs::rename(
            dir.path().join("src/main.rs"),
            dir.path().join("src/lib.rs"),
        )
        .expect("rename");
        assert_ne!(digest_tree(dir.path()).expect("digest"), first);
    }
}
