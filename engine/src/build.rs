//! Builds a prepared service with Cargo (`--profile lab`, the shared target dir) and returns
//! its binary, or the compiler's diagnostics when it does not compile. A failed build is an
//! ordinary error value: it never takes the lab down.

use std::path::PathBuf;
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
    Compile { package: String, diagnostics: String },
    #[error("cargo built {package} but {} is missing", binary.display())]
    MissingBinary { package: String, binary: PathBuf },
}

/// `cargo build --profile lab -p <package>` in the code's workspace.
pub async fn build(code: &PreparedCode, target_dir: &std::path::Path) -> Result<Built, BuildError> {
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = tokio::process::Command::new(cargo)
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
    let binary = target_dir.join(PROFILE).join(&code.package);
    if !binary.is_file() {
        return Err(BuildError::MissingBinary {
            package: code.package.clone(),
            binary,
        });
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Ok(Built {
        binary,
        took: started.elapsed(),
        waited_for_lock: stderr.contains("Blocking waiting for file lock"),
        compiled: stderr.contains("Compiling"),
    })
}

/// Cargo's stderr without its progress lines: what remains is what the learner must read.
pub fn diagnostics(stderr: &str) -> String {
    const PROGRESS: [&str; 9] = [
        "Compiling", "Checking", "Blocking", "Finished", "Locking", "Downloading", "Downloaded",
        "Updating", "Adding",
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
