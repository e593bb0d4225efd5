//! Generates one golden test per scenario that has a `fixes/` folder (see
//! `cli/tests/it/golden.rs`), so a new scenario's golden test runs without editing any test
//! code: `include!(concat!(env!("OUT_DIR"), "/golden_tests.rs"))`.

use std::path::Path;

fn main() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    // A directory here makes Cargo rerun this script when anything below it changes.
    println!("cargo:rerun-if-changed={}", scenarios.display());
    let mut ids = Vec::new();
    // Loud failures: a scenario silently left out would be a golden test that never runs
    // (`golden::every_scenario_with_fixes_has_its_golden_test` checks the list as well).
    let entries = std::fs::read_dir(&scenarios)
        .unwrap_or_else(|e| panic!("read {}: {e}", scenarios.display()));
    for entry in entries {
        let dir = entry
            .unwrap_or_else(|e| panic!("read {}: {e}", scenarios.display()))
            .path();
        if !dir.join("fixes").is_dir() {
            continue;
        }
        let toml = std::fs::read_to_string(dir.join("scenario.toml"))
            .unwrap_or_else(|e| panic!("read {}/scenario.toml: {e}", dir.display()));
        // The first `id = "..."` line: the catalog itself validates the rest.
        let id = toml.lines().find_map(|l| {
            let rest = l
                .trim()
                .strip_prefix("id")?
                .trim_start()
                .strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_string())
        });
        let id = id
            .filter(|id| {
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            .unwrap_or_else(|| panic!("{}/scenario.toml: no `id = \"...\"` line", dir.display()));
        ids.push(id);
    }
    ids.sort();
    let mut code = format!(
        "/// The scenarios this file has a test for.\nconst GENERATED: &[&str] = &{ids:?};\n\n"
    );
    for id in &ids {
        code.push_str(&format!(
            "#[test]\nfn every_fix_of_{}_gets_its_verdict() {{\n    run_scenario_fixes({id:?});\n}}\n\n",
            id.replace('-', "_")
        ));
    }
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("golden_tests.rs");
    // Written only when it changes, so the tests are not recompiled for nothing.
    if std::fs::read_to_string(&out).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(&out, code).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
    }
}
