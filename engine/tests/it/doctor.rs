//! `doctor` (what the machine lacks, and how to get it), `GET /api/doctor`, and the vendored
//! crates wiring: a workspace generated from sources that ship `vendor/` builds from them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sdlab_engine::api::{self, ApiState};
use sdlab_engine::workspace::{self, CodeSource};
use sdlab_engine::{doctor, Lab, LabHome, Sources};
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn a_data_folder_that_cannot_be_created_is_missing_with_a_fix() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder below a regular file can never be created, even by root.
    std::fs::write(tmp.path().join("file"), b"x").unwrap();
    let home = LabHome::at(tmp.path().join("file/home"));
    let finding = doctor::data_dir(&home);
    assert!(!finding.ok && finding.required, "{finding:?}");
    assert!(
        finding.detail.contains("file/home"),
        "names the folder: {finding:?}"
    );
    assert!(
        finding.fix.contains("SDLAB_HOME"),
        "says what to do: {finding:?}"
    );

    let ok = doctor::data_dir(&LabHome::at(tmp.path().join("home")));
    assert!(ok.ok, "{ok:?}");
    let findings = [finding.clone(), ok];
    assert_eq!(doctor::blocking(&findings), vec![&finding]);
    assert!(doctor::render(&findings).contains("MISSING"));
}

#[test]
fn this_machine_has_cargo_and_postgres() {
    // The test suite itself needs both; doctor must find them and say which version.
    let cargo = doctor::cargo();
    assert!(cargo.ok && cargo.detail.starts_with("cargo "), "{cargo:?}");
    let pg = doctor::postgres();
    assert!(pg.ok && pg.detail.contains("PostgreSQL"), "{pg:?}");
}

#[test]
fn redis_server_is_reported_with_its_version_and_never_blocks_a_start() {
    // scripts/deps.sh installs it; the scenarios without a cache start without it.
    let redis = doctor::redis();
    assert!(!redis.required, "{redis:?}");
    assert!(
        redis.ok && redis.detail.starts_with("Redis server v="),
        "{redis:?}"
    );
    assert!(doctor::redis_version().is_some_and(|v| v.starts_with("Redis server v=")));
}

#[test]
fn vendored_crates_are_wired_into_generated_workspaces_and_unwired_without_them() {
    // Sources like the desktop package's: the repo's manifests and scenarios, plus vendor/.
    let src = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("Cargo.toml"), src.path().join("Cargo.toml")).unwrap();
    std::fs::copy(repo().join("Cargo.lock"), src.path().join("Cargo.lock")).unwrap();
    workspace::copy_tree(&repo().join("scenarios"), &src.path().join("scenarios")).unwrap();
    let sources = Sources::at(src.path());
    let home_dir = tempfile::tempdir().unwrap();
    let home = LabHome::at(home_dir.path());
    let lab = Lab::new(home.clone(), sources.clone()).unwrap();
    let scenario = lab.scenario("t1-01").unwrap().clone();

    let without = doctor::offline_crates(&sources);
    assert!(!without.ok && !without.required, "{without:?}");

    std::fs::create_dir_all(sources.vendor_dir()).unwrap();
    assert!(doctor::offline_crates(&sources).ok);
    let code = workspace::prepare(&home, &sources, &scenario, &CodeSource::Learner).unwrap();
    let config_path = code.workspace_root.join(".cargo/config.toml");
    let config: toml::Table = std::fs::read_to_string(&config_path)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        config["source"]["crates-io"]["replace-with"].as_str(),
        Some("sdlab-vendored")
    );
    assert_eq!(
        config["source"]["sdlab-vendored"]["directory"].as_str(),
        Some(sources.vendor_dir().to_str().unwrap())
    );
    // A lock from other sources is replaced by the sources' (the vendored versions), once.
    let lock = code.workspace_root.join("Cargo.lock");
    std::fs::write(&lock, "# a lock from an older package\n").unwrap();
    std::fs::remove_file(code.workspace_root.join(".sdlab-source.lock")).unwrap();
    workspace::prepare(&home, &sources, &scenario, &CodeSource::Learner).unwrap();
    assert_eq!(
        std::fs::read(&lock).unwrap(),
        std::fs::read(sources.lockfile()).unwrap()
    );
    std::fs::write(&lock, "# cargo pruned it\n").unwrap();
    workspace::prepare(&home, &sources, &scenario, &CodeSource::Learner).unwrap();
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        "# cargo pruned it\n",
        "copied only when the sources' lock changes"
    );
    // The generated manifest keeps no member list of the repository's.
    let manifest: toml::Table = std::fs::read_to_string(code.workspace_root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(manifest["workspace"].get("default-members").is_none());

    std::fs::remove_dir(sources.vendor_dir()).unwrap();
    workspace::prepare(&home, &sources, &scenario, &CodeSource::Learner).unwrap();
    assert!(
        !config_path.exists(),
        "the lab's vendored-crates config must go with the crates"
    );
}

#[tokio::test]
async fn the_api_reports_findings_to_the_lab_page_only() {
    let home = tempfile::tempdir().unwrap();
    let lab = Lab::new(LabHome::at(home.path()), Sources::at(repo())).unwrap();
    let app = api::router(ApiState::new(lab, TOKEN, 45124).unwrap());
    let request = |token: &str| {
        Request::builder()
            .uri("/api/doctor")
            .header("host", "127.0.0.1:45124")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let denied = app
        .clone()
        .oneshot(request("wrong-token-wrong-token"))
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let response = app.oneshot(request(TOKEN)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = findings.iter().filter_map(|f| f["what"].as_str()).collect();
    assert!(names.iter().any(|n| n.contains("cargo")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("PostgreSQL")), "{names:?}");
    let data = findings
        .iter()
        .find(|f| f["what"].as_str().unwrap_or("").contains("data folder"))
        .unwrap();
    assert_eq!(data["ok"], true, "{data}");
}

#[test]
fn the_replica_tools_are_found_beside_postgres_or_missing_with_how_to_install_them() {
    let found = doctor::replica_tools();
    assert!(found.ok && !found.required, "{found:?}");
    assert!(found.detail.contains("pg_basebackup"), "{found:?}");
    let empty = tempfile::tempdir().unwrap();
    let missing = doctor::replica_tools_in(empty.path());
    assert!(!missing.ok && !missing.required, "{missing:?}");
    assert!(
        missing.detail.contains("pg_basebackup and pg_receivewal"),
        "{missing:?}"
    );
    assert!(
        missing.fix.contains("apt-get install -y postgresql"),
        "{missing:?}"
    );
}
