//! The committed Codespaces configurations (`.devcontainer/<id>/devcontainer.json`) are exactly
//! what `sdlab devcontainers` generates from the catalog, and each is a valid devcontainer.json
//! by the schema vendored in docs/schemas/devcontainer/ (offline: it references only itself).

use std::path::{Path, PathBuf};

use sdlab_engine::catalog::devcontainer::{self, REGENERATE};
use sdlab_engine::catalog::scaffold::{self, NewScenario};
use sdlab_engine::catalog::{load_scenario, Catalog};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn catalog() -> Catalog {
    Catalog::load(&repo().join("scenarios")).expect("the catalog loads")
}

fn validator() -> jsonschema::Validator {
    let path = repo().join("docs/schemas/devcontainer/devContainer.base.schema.json");
    let text = std::fs::read_to_string(&path).expect("the vendored schema is there");
    let schema: Value = serde_json::from_str(&text).expect("the vendored schema is JSON");
    jsonschema::validator_for(&schema).expect("the vendored schema compiles offline")
}

fn schema_errors(validator: &jsonschema::Validator, config: &Value) -> Vec<String> {
    validator
        .iter_errors(config)
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn the_committed_configurations_are_what_the_catalog_generates() {
    let problems = devcontainer::check(&catalog(), &repo().join(".devcontainer")).unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_scenario_has_a_configuration_that_opens_its_guide() {
    let catalog = catalog();
    let generated = devcontainer::generate(&catalog).unwrap();
    assert_eq!(generated.len(), catalog.scenarios.len());
    for (scenario, file) in catalog.scenarios.iter().zip(&generated) {
        let config: Value = serde_json::from_str(&file.text).unwrap();
        assert_eq!(
            config["name"],
            format!("{} {}", scenario.id, scenario.title)
        );
        let guide = config["customizations"]["codespaces"]["openFiles"][0]
            .as_str()
            .unwrap();
        assert!(repo().join(guide).is_file(), "{guide} is not a file");
        assert_eq!(
            guide,
            format!("scenarios/{}/SCENARIO.md", scenario.dir_name())
        );
    }
}

#[test]
fn every_committed_configuration_validates_against_the_vendored_schema() {
    let validator = validator();
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join(".devcontainer")).unwrap() {
        let path = entry.unwrap().path().join("devcontainer.json");
        if !path.is_file() {
            continue;
        }
        let config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let errors = schema_errors(&validator, &config);
        assert!(
            errors.is_empty(),
            "{}: {}",
            path.display(),
            errors.join("; ")
        );
        seen += 1;
    }
    assert_eq!(seen, catalog().scenarios.len());
}

#[test]
fn the_schema_refuses_a_configuration_with_a_misspelt_or_missing_field() {
    let validator = validator();
    let generated = devcontainer::generate(&catalog()).unwrap();
    let good: Value = serde_json::from_str(&generated[0].text).unwrap();
    assert!(schema_errors(&validator, &good).is_empty());

    let mut misspelt = good.clone();
    let start = misspelt["postStartCommand"].take();
    misspelt["postStartCommnd"] = start;
    misspelt.as_object_mut().unwrap().remove("postStartCommand");
    assert!(!schema_errors(&validator, &misspelt).is_empty());

    let mut no_dockerfile = good.clone();
    no_dockerfile["build"]
        .as_object_mut()
        .unwrap()
        .remove("dockerfile");
    assert!(!schema_errors(&validator, &no_dockerfile).is_empty());

    let mut bad_auto_forward = good;
    bad_auto_forward["portsAttributes"]["8790"]["onAutoForward"] = "openBrowserPlease".into();
    assert!(!schema_errors(&validator, &bad_auto_forward).is_empty());
}

#[test]
fn a_new_scenario_without_regenerating_fails_with_the_command_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let created = scaffold::create(
        tmp.path(),
        &NewScenario {
            id: "t1-99".to_string(),
            title: "Brand New Lesson".to_string(),
            track: None,
            stage: None,
        },
    )
    .unwrap();
    let mut catalog = catalog();
    catalog
        .scenarios
        .push(load_scenario(&created.dir.join("scenario.toml")).unwrap());

    let problems = devcontainer::check(&catalog, &repo().join(".devcontainer")).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("t1-99/devcontainer.json is missing")
            && problems[0].contains(&format!("run `{REGENERATE}`")),
        "{}",
        problems[0]
    );

    // Regenerating into a copy fixes it, and a scenario that goes away leaves no configuration.
    let dir = tmp.path().join(".devcontainer");
    devcontainer::write(&catalog, &dir).unwrap();
    assert!(devcontainer::check(&catalog, &dir).unwrap().is_empty());
    catalog.scenarios.retain(|s| s.id != "t1-02");
    let stale = devcontainer::check(&catalog, &dir).unwrap();
    assert!(
        stale.len() == 1 && stale[0].contains("t1-02/devcontainer.json belongs to no scenario"),
        "{stale:?}"
    );
    devcontainer::write(&catalog, &dir).unwrap();
    assert!(!dir.join("t1-02").exists());
    assert!(devcontainer::check(&catalog, &dir).unwrap().is_empty());
}

#[test]
fn a_hand_edited_configuration_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = catalog();
    devcontainer::write(&catalog, tmp.path()).unwrap();
    let edited = tmp.path().join("t1-01/devcontainer.json");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, text.replace("8790", "8791")).unwrap();
    let problems = devcontainer::check(&catalog, tmp.path()).unwrap();
    assert!(
        problems.len() == 1 && problems[0].contains("is not what the catalog generates"),
        "{problems:?}"
    );
}

/// Runs .devcontainer/serve.sh for t1-01 with a fake `sdlab` on PATH that records its
/// arguments and prints serve's first line for `served_port`; returns the script's status and
/// output, the arguments and the address it wrote.
fn run_serve_script(env: &[(&str, &str)], served_port: u16) -> (bool, String, String, String) {
    let tmp = tempfile::tempdir().expect("the fake sdlab and its folder");
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("the fake sdlab and its folder");
    let args = tmp.path().join("args");
    let fake = bin.join("sdlab");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" > {}\necho 'serving http://127.0.0.1:{served_port}/#token=ab12'\n",
            args.display()
        ),
    )
    .expect("the fake sdlab and its folder");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .expect("the fake sdlab and its folder");
    let url_file = tmp.path().join("url");
    let mut command = std::process::Command::new("bash");
    command
        .arg(repo().join(".devcontainer/serve.sh"))
        .arg("t1-01")
        .env_remove("SDLAB_FORWARDED_HOST")
        .env_remove("CODESPACE_NAME")
        .env_remove("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN")
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("SDLAB_PORT", "8790")
        .env("SDLAB_SERVE_LOG", tmp.path().join("log"))
        .env("SDLAB_URL_FILE", &url_file);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("bash runs serve.sh");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(&args).unwrap_or_default();
    let url = std::fs::read_to_string(&url_file).unwrap_or_default();
    (
        out.status.success(),
        output,
        args.trim().into(),
        url.trim().into(),
    )
}

#[test]
fn the_start_script_allows_the_forwarded_name_and_writes_the_address_with_its_token() {
    let (ok, output, args, url) = run_serve_script(
        &[
            ("CODESPACE_NAME", "fluffy-robot"),
            ("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN", "app.github.dev"),
        ],
        8790,
    );
    assert!(ok, "{output}");
    assert_eq!(
        args,
        "serve --port 8790 --allow-host fluffy-robot-8790.app.github.dev"
    );
    assert_eq!(
        url,
        "https://fluffy-robot-8790.app.github.dev/#token=ab12&scenario=t1-01"
    );
    assert!(output.contains(&url), "{output}");

    // remoteEnv's value wins; as a dev container outside Codespaces expands it (empty
    // variables), it allows no name and the address is the loopback one.
    let (ok, output, args, url) = run_serve_script(
        &[("SDLAB_FORWARDED_HOST", "-8790."), ("CODESPACE_NAME", "x")],
        8790,
    );
    assert!(ok, "{output}");
    assert_eq!(args, "serve --port 8790");
    assert_eq!(url, "http://127.0.0.1:8790/#token=ab12&scenario=t1-01");
}

#[test]
fn the_start_script_fails_when_serve_is_not_on_the_forwarded_port() {
    let (ok, output, _, url) = run_serve_script(&[], 8791);
    assert!(!ok);
    assert!(output.contains("8791, which is not forwarded"), "{output}");
    assert!(url.is_empty());
}

#[test]
fn the_start_script_and_the_configurations_use_the_same_port() {
    let script = std::fs::read_to_string(repo().join(".devcontainer/serve.sh")).unwrap();
    assert!(script.contains(&format!("SDLAB_PORT:-{}", devcontainer::PORT)));
    let generated = devcontainer::generate(&catalog()).unwrap();
    let config: Value = serde_json::from_str(&generated[0].text).unwrap();
    assert_eq!(
        config["remoteEnv"]["SDLAB_PORT"],
        devcontainer::PORT.to_string()
    );
    assert_eq!(config["forwardPorts"][0], devcontainer::PORT);
}
