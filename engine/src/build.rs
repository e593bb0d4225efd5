//! Builds a prepared service with Cargo (`--profile lab`, the shared target dir) and returns
//! its binary, or the compiler's diagnostics when it does not compile. A failed build is an
//! ordinary error value: it never takes the lab down.
//!
//! The learner's code and the solution (or any `check --code` folder) are the same package in
//! different workspaces, so they build to the same path in the shared target dir. Each build
//! therefore holds the lab's build lock (`<target>/.sdlab-build.lock`) from `cargo build` until
//! its binary is copied out to a path of its own (`<home>/run/bin/<package>-<pid>`), and the
//! lab runs that copy: another build can never swap the binary a lab is about to start.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::workspace::PreparedCode;

/// The Cargo profile services are built with (defined in the root Cargo.toml): optimised,
/// incremental, many codegen units, so numbers are realistic and edits rebuild in seconds.
pub const PROFILE: &str = "lab";

#[derive(Debug, Clone)]
pub struct Built {
    pub binary: PathBuf,
    pub took: Duration,
    /// Whether cargo had to wait for another build using the same target dir.
    pub waited_for_lock: bool,
    /// Whether anything was compiled (false: the binary was up to date).
    pub compiled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run `cargo` ({source}); is Rust installed? See https://rustup.rs or run ./install.sh")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
    #[error("{package} does not compile:\n{diagnostics}")]
    Compile {
        package: String,
        diagnostics: String,
    },
    #[error("cargo built {package} but {} is missing", binary.display())]
    MissingBinary { package: String, binary: PathBuf },
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// `cargo build --profile lab -p <package>` in the code's workspace, then a private copy of the
/// binary in `bin_dir` (see the module doc). `opt_level` compiles the package alone at that
/// level (its dependencies stay optimised): the test suite's faster builds, see
/// `Lab::service_opt_level`.
pub async fn build(
    code: &PreparedCode,
    target_dir: &Path,
    bin_dir: &Path,
    opt_level: Option<u8>,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    let lock = lock_builds(target_dir).await?;
    // The kit and the service, each reused from an earlier build only if its sources are the
    // ones built there last (see `freshness`).
    let slots = [code.workspace_root.join("kit"), code.dir.clone()]
        .iter()
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .map(|dir| crate::freshness::Slot::new(&code.workspace_root, dir, target_dir, PROFILE))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(format!(
            "read the sources in {}",
            code.workspace_root.display()
        )))?;
    for slot in &slots {
        slot.prepare().map_err(io(format!(
            "mark the changed sources in {}",
            code.workspace_root.display()
        )))?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = tokio::process::Command::new(cargo);
    // A lab killed mid-build takes its cargo along (rustc jobs finish their unit and exit).
    crate::process::die_with_parent(&mut command);
    if let Some(level) = opt_level {
        command.arg("--config").arg(format!(
            "profile.{PROFILE}.package.\"{}\".opt-level={level}",
            code.package
        ));
    }
    let output = command
        .arg("build")
        .arg("--profile")
        .arg(PROFILE)
        .arg("-p")
        .arg(&code.package)
        .arg("--manifest-path")
        .arg(code.workspace_root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--color")
        .arg("never")
        .current_dir(&code.workspace_root)
        // A build started from inside `cargo test` must not inherit its settings.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| BuildError::Spawn { source })?;
    if !output.status.success() {
        return Err(BuildError::Compile {
            package: code.package.clone(),
            diagnostics: diagnostics(&String::from_utf8_lossy(&output.stderr)),
        });
    }
    let built = target_dir.join(PROFILE).join(&code.package);
    if !built.is_file() {
        return Err(BuildError::MissingBinary {
            package: code.package.clone(),
            binary: built,
        });
    }
    for slot in &slots {
        slot.record().map_err(io(format!(
            "record the built sources in {}",
            target_dir.display()
        )))?;
    }
    let binary = copy_out(&built, bin_dir, &code.package)?;
    drop(lock);
    let stderr = String::from_utf8_lossy(&output.stderr);
    Ok(Built {
        binary,
        took: started.elapsed(),
        waited_for_lock: stderr.contains("Blocking waiting for file lock"),
        compiled: stderr.contains("Compiling"),
    })
}

/// `map_err` adapter: an I/O failure while doing `what`.
fn io(what: String) -> impl FnOnce(std::io::Error) -> BuildError {
    move |source| BuildError::Io { what, source }
}

/// Waits for (and takes) the lab's build lock of `target_dir`; released when dropped.
async fn lock_builds(target_dir: &Path) -> Result<std::fs::File, BuildError> {
    let path = target_dir.join(".sdlab-build.lock");
    std::fs::create_dir_all(target_dir).map_err(io(format!("create {}", target_dir.display())))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("open {}", path.display())))?;
    tokio::task::spawn_blocking(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; it is released when `file` closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            Ok(file)
        } else {
            Err(BuildError::Io {
                what: format!("lock {}", path.display()),
                source: std::io::Error::last_os_error(),
            })
        }
    })
    .await
    .map_err(|e| BuildError::Io {
        what: "wait for the build lock".to_string(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// Copies `built` to `<bin_dir>/<package>-<pid>` (written beside it, then renamed over the old
/// copy, which a running service may still be executing) and removes copies of dead labs.
fn copy_out(built: &Path, bin_dir: &Path, package: &str) -> Result<PathBuf, BuildError> {
    std::fs::create_dir_all(bin_dir).map_err(io(format!("create {}", bin_dir.display())))?;
    let me = std::process::id();
    let target = bin_dir.join(format!("{package}-{me}"));
    let partial = bin_dir.join(format!(".{package}-{me}.partial"));
    std::fs::copy(built, &partial).map_err(io(format!(
        "copy {} to {}",
        built.display(),
        partial.display()
    )))?;
    std::fs::rename(&partial, &target).map_err(io(format!("rename {}", partial.display())))?;
    if let Ok(entries) = std::fs::read_dir(bin_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let pid = name
                .trim_end_matches(".partial")
                .rsplit('-')
                .next()
                .and_then(|p| p.parse::<u32>().ok());
            let dead = |pid: u32| pid != me && !Path::new(&format!("/proc/{pid}")).exists();
            if pid.is_some_and(dead) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(target)
}

/// Cargo's stderr without its progress lines: what remains is what the learner must read.
pub fn diagnostics(stderr: &str) -> String {
    const PROGRESS: [&str; 9] = [
        "Compiling",
        "Checking",
        "Blocking",
        "Finished",
        "Locking",
        "Downloading",
        "Downloaded",
        "Updating",
        "Adding",
    ];
    let kept: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            let first = line.split_whitespace().next().unwrap_or("");
            !(line.starts_with(' ') && PROGRESS.contains(&first))
        })
        .collect();
    let text = kept.join("\n");
    if text.trim().is_empty() {
        stderr.trim().to_string()
    } else {
        text.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_drop_progress_lines_and_keep_errors() {
        let stderr = "   Compiling sdlab-kit v0.0.0\n   Compiling scenario-t1-01-service v0.0.0\nerror[E0425]: cannot find value `x` in this scope\n --> src/main.rs:3:5\n  |\n3 |     x\n  |     ^ not found in this scope\n\nerror: could not compile `scenario-t1-01-service`\n";
        let d = diagnostics(stderr);
        assert!(!d.contains("Compiling"));
        assert!(d.starts_with("error[E0425]"));
        assert!(d.contains("src/main.rs:3:5"));
    }
}
