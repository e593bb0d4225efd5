//! `sdlab new` makes a scenario that lints and passes its own golden test unchanged, in a
//! sources tree of its own (the repository's root manifest, lock file and kit, nothing else),
//! as an author's new scenario would before anyone edits it.

use std::time::Duration;

use crate::harness::*;

#[test]
fn a_new_scenario_lints_builds_and_passes_its_golden_test() {
    let sources = tempfile::Builder::new()
        .prefix("sdlab-sources-")
        .tempdir_in("/tmp")
        .unwrap();
    let root = sources.path();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo().join(file), root.join(file)).unwrap();
    }
    copy_tree(&repo().join("scenarios/kit"), &root.join("scenarios/kit"));
    let home = fresh_home();

    let mut new = sdlab(home.path());
    new.env("SDLAB_ROOT", root)
        .args(["new", "t9-99", "--title", "Finding One Item"]);
    let out = run(new, Duration::from_secs(60));
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "sdlab new failed:\n{stdout}\n{stderr}"
    );
    let dir = root.join("scenarios/t9-99-finding-one-item");
    assert!(dir.join("scenario.toml").is_file(), "{stdout}");
    assert!(
        stdout.contains("cargo build"),
        "says to update Cargo.lock:\n{stdout}"
    );

    // It never overwrites: a second `new` with the same id is refused.
    let mut again = sdlab(home.path());
    again
        .env("SDLAB_ROOT", root)
        .args(["new", "t9-99", "--title", "Another Title"]);
    let out = run(again, Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "a second `sdlab new t9-99` succeeded"
    );

    let mut lint = sdlab(home.path());
    lint.args(["lint", "--root"]).arg(root.join("scenarios"));
    let out = run(lint, Duration::from_secs(60));
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "sdlab lint failed:\n{stdout}\n{stderr}"
    );

    // The lab's workspaces are seeded from this tree's Cargo.lock, which does not list the
    // new packages yet: cargo adds them at the build (the lab never builds with --locked).
    crate::golden::run_fixes(home.path(), root, "t9-99");
}
