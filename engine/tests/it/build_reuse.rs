//! Builds in one target dir from workspaces at different paths (lab homes, the learner's and
//! the scratch workspace): identical sources are reused, never another workspace's edits.
//! Real `cargo build`s of a tiny kit + service pair with no dependencies.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use sdlab_engine::build::{self, Built};
use sdlab_engine::workspace::{copy_tree, PreparedCode};

/// The sources every workspace is copied from, like the lab's scenario tree.
fn sources(root: &Path) -> PathBuf {
    let src = root.join("sources");
    let files = [
        (
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\"kit\", \"s/service\"]\n\n\
             [profile.lab]\ninherits = \"release\"\nopt-level = 0\n",
        ),
        (
            "kit/Cargo.toml",
            "[package]\nname = \"kit\"\nversion = \"0.0.0\"\nedition = \"2021\"\n",
        ),
        ("kit/src/lib.rs", "pub const KIT: &str = \"kit\";\n"),
        (
            "s/service/Cargo.toml",
            "[package]\nname = \"reuse-service\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nkit = { path = \"../../kit\" }\n",
        ),
        (
            "s/service/src/main.rs",
            "fn main() { println!(\"{} v1\", kit::KIT); }\n",
        ),
    ];
    for (path, text) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    src
}

/// A new workspace at `root/name`, copied the way the lab copies (mtimes kept).
fn workspace(root: &Path, sources: &Path, name: &str) -> PreparedCode {
    let ws = root.join(name);
    copy_tree(sources, &ws).unwrap();
    PreparedCode {
        workspace_root: ws.clone(),
        package: "reuse-service".to_string(),
        dir: ws.join("s/service"),
    }
}

async fn build_and_run(code: &PreparedCode, target: &Path, bin: &Path) -> (Built, String) {
    let built = build::build(code, target, bin, None).await.unwrap();
    let out = std::process::Command::new(&built.binary).output().unwrap();
    (
        built,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

#[tokio::test]
async fn identical_sources_are_reused_and_edits_elsewhere_are_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (target, bin) = (tmp.path().join("target"), tmp.path().join("bin"));
    let src = sources(tmp.path());
    let a = workspace(tmp.path(), &src, "home-a");
    // Copied now, built only after home A's edit below.
    let c = workspace(tmp.path(), &src, "home-c");

    let (built, out) = build_and_run(&a, &target, &bin).await;
    assert!(built.compiled, "the first build compiles");
    assert_eq!(out, "kit v1");
    // Cargo wrote Cargo.lock during that build; the next one has nothing to do.
    let (built, _) = build_and_run(&a, &target, &bin).await;
    assert!(
        !built.compiled,
        "a second build of the same workspace compiles again"
    );

    // Another home with the same sources: nothing to compile.
    let b = workspace(tmp.path(), &src, "home-b");
    let (built, out) = build_and_run(&b, &target, &bin).await;
    assert!(
        !built.compiled,
        "the same sources at another path are reused"
    );
    assert_eq!(out, "kit v1");

    // Home A edits its service and builds it...
    std::fs::write(
        a.dir.join("src/main.rs"),
        "fn main() { println!(\"{} v2\", kit::KIT); }\n",
    )
    .unwrap();
    let (built, out) = build_and_run(&a, &target, &bin).await;
    assert!(built.compiled);
    assert_eq!(out, "kit v2");
    // ...and home C, whose copy is older than that build, must still run its own code.
    let (built, out) = build_and_run(&c, &target, &bin).await;
    assert_eq!(out, "kit v1", "home C ran home A's edit");
    assert!(
        built.compiled,
        "other sources than the last build are compiled"
    );
    // Back in home A: its edit, again.
    let (_, out) = build_and_run(&a, &target, &bin).await;
    assert_eq!(out, "kit v2");

    // Reset (the original copied back, with the sources' old mtimes) runs the original.
    std::fs::remove_dir_all(&a.dir).unwrap();
    copy_tree(&src.join("s/service"), &a.dir).unwrap();
    let (_, out) = build_and_run(&a, &target, &bin).await;
    assert_eq!(out, "kit v1", "reset code ran the edited build");
}

/// The kit's compiled library in `target` (one file, whatever its hash suffix).
fn kit_rlib(target: &Path) -> PathBuf {
    std::fs::read_dir(target.join("lab/deps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("libkit-") && name.ends_with(".rlib")
        })
        .unwrap()
}

#[tokio::test]
async fn an_opt_level_for_the_service_recompiles_the_service_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (target, bin) = (tmp.path().join("target"), tmp.path().join("bin"));
    let src = sources(tmp.path());
    let code = workspace(tmp.path(), &src, "home");
    let (built, _) = build_and_run(&code, &target, &bin).await;
    assert!(built.compiled);
    let rlib = kit_rlib(&target);
    let kit_built = std::fs::metadata(&rlib).unwrap().modified().unwrap();
    // The profile says opt-level 0; the service alone at 1 is another build of it...
    let built = build::build(&code, &target, &bin, Some(1)).await.unwrap();
    assert!(
        built.compiled,
        "the service was not recompiled at its own level"
    );
    let out = std::process::Command::new(&built.binary).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kit v1");
    // ...and its dependency is the one built before.
    assert_eq!(kit_rlib(&target), rlib, "the kit was rebuilt");
    assert_eq!(
        std::fs::metadata(&rlib).unwrap().modified().unwrap(),
        kit_built,
        "the kit was recompiled for the service's level"
    );
    let again = build::build(&code, &target, &bin, Some(1)).await.unwrap();
    assert!(!again.compiled, "the same level twice compiles again");
}
