//! Tidy: every Rust file in the lab opens with a `//!` comment stating its one job.

// Helpers unwrap too: a failed setup must fail the test loudly (clippy only exempts the
// test functions themselves).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The folders whose Rust files the rule covers, relative to the repository root.
const ROOTS: &[&str] = &["engine", "cli", "embedded", "scenarios"];

#[test]
fn every_rust_file_opens_with_a_module_doc_comment() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for root in ROOTS {
        rust_files(&repo.join(root), &mut files);
    }
    assert!(
        files.len() > 10,
        "the walk found only {} files; is the repository root right?",
        files.len()
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(&repo).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "these files do not open with a `//!` comment saying what they are for:\n  {}",
        offenders.join("\n  ")
    );
}

/// Every `.rs` file under `dir`, skipping build output (`target/`) and hidden folders.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}
