//! The API's parts for the web UI: the built assets at `/` (no token, but Host/Origin checked
//! and paths confined), the page shown when the UI is not built, editor drafts, the guide's
//! questions and the learner's answers, and the run history.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use sdlab_engine::api::{self, ApiState};
use sdlab_engine::{Lab, LabHome, Sources};
use serde_json::Value;
use tower::ServiceExt;

const PORT: u16 = 45124;
const TOKEN: &str = "fedcba9876543210fedcba9876543210";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct TestUi {
    _home: tempfile::TempDir,
    ui: tempfile::TempDir,
    lab: Lab,
    app: Router,
}

/// A lab in a temp home whose UI folder is a temp folder with an index and one asset.
fn test_ui() -> TestUi {
    let home = tempfile::tempdir().unwrap();
    let ui = tempfile::tempdir().unwrap();
    std::fs::create_dir(ui.path().join("assets")).unwrap();
    std::fs::write(
        ui.path().join("index.html"),
        "<!doctype html><title>lab</title>",
    )
    .unwrap();
    std::fs::write(ui.path().join("assets/app-1234.js"), "console.log('lab')").unwrap();
    let lab = Lab::new(LabHome::at(home.path()), Sources::at(repo())).unwrap();
    let app = api::router(
        ApiState::new(lab.clone(), TOKEN, PORT)
            .unwrap()
            .ui_dir(ui.path()),
    );
    TestUi {
        _home: home,
        ui,
        lab,
        app,
    }
}

fn req(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", format!("127.0.0.1:{PORT}"))
}

fn authed(method: &str, uri: &str) -> axum::http::request::Builder {
    req(method, uri).header("authorization", format!("Bearer {TOKEN}"))
}

/// Status, content type and body text.
async fn send(app: &Router, request: Request<Body>) -> (StatusCode, String, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, String::from_utf8_lossy(&bytes).to_string())
}

async fn json(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let (status, _, body) = send(app, request).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn the_built_ui_is_served_without_the_token_with_its_content_types() {
    let t = test_ui();
    let (status, kind, body) = send(&t.app, req("GET", "/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("<title>lab</title>"));
    let (status, kind, body) = send(
        &t.app,
        req("GET", "/assets/app-1234.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/javascript"), "{kind}");
    assert_eq!(body, "console.log('lab')");
    let (status, _, _) = send(
        &t.app,
        req("GET", "/assets/missing.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Unknown API endpoints stay JSON 404s (with the token), not the UI's files.
    let (status, body) = json(
        &t.app,
        authed("GET", "/api/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("no such API endpoint"));
    // Writes to the UI's files are refused.
    let (status, _, _) = send(
        &t.app,
        req("PUT", "/index.html").body(Body::from("x")).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_ui_is_refused_to_foreign_hosts_and_origins_like_the_api() {
    let t = test_ui();
    let request = Request::builder()
        .uri("/")
        .header("host", "evil.example:80")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, request).await.0, StatusCode::FORBIDDEN);
    let request = req("GET", "/assets/app-1234.js")
        .header("origin", "http://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, request).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn ui_paths_with_dot_dot_or_symlinks_out_of_its_folder_are_refused_with_400() {
    let t = test_ui();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        t.ui.path().join("secret.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), t.ui.path().join("escape")).unwrap();
    for uri in [
        "/../../../etc/passwd",
        "/assets/../../secret.txt",
        "/secret.txt",
        "/escape/secret.txt",
    ] {
        let (status, _, body) = send(&t.app, req("GET", uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "GET {uri}: {body}");
        assert!(!body.contains("secret\""), "{body}");
        assert_ne!(body, "secret");
    }
}

#[tokio::test]
async fn without_a_built_ui_the_page_says_how_to_build_it() {
    let home = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let lab = Lab::new(LabHome::at(home.path()), Sources::at(repo())).unwrap();
    let app = api::router(
        ApiState::new(lab, TOKEN, PORT)
            .unwrap()
            .ui_dir(empty.path().join("dist")),
    );
    let (status, kind, body) = send(&app, req("GET", "/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(kind.starts_with("text/html"));
    assert!(body.contains("bash scripts/build-ui.sh"), "{body}");
}

#[tokio::test]
async fn drafts_are_kept_beside_the_saved_file_until_it_is_saved() {
    let t = test_ui();
    let file = "/api/scenarios/t1-01/files/src/main.rs";
    let draft = "/api/scenarios/t1-01/drafts/src/main.rs";
    let (status, body) = json(&t.app, authed("GET", file).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["draft"], Value::Null);
    let saved = body["content"].as_str().unwrap().to_string();

    let (status, body) = json(
        &t.app,
        authed("PUT", draft)
            .body(Body::from("//! half typed"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A new server on the same home (a lab restart) still has it; the file is untouched.
    let again = api::router(ApiState::new(t.lab.clone(), TOKEN, PORT).unwrap());
    let (_, body) = json(&again, authed("GET", file).body(Body::empty()).unwrap()).await;
    assert_eq!(body["draft"], "//! half typed");
    assert_eq!(body["content"], saved.as_str());

    // Saving the file drops the draft.
    let (status, _) = json(
        &t.app,
        authed("PUT", file).body(Body::from("//! saved\n")).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = json(&t.app, authed("GET", file).body(Body::empty()).unwrap()).await;
    assert_eq!(
        (body["content"].as_str(), &body["draft"]),
        (Some("//! saved\n"), &Value::Null)
    );

    // A draft of a file not saved yet opens as an empty file with its draft; discarding drops it.
    let new = "/api/scenarios/t1-01/drafts/migrations/0001_x.sql";
    assert_eq!(
        json(
            &t.app,
            authed("PUT", new).body(Body::from("create index")).unwrap()
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, body) = json(
        &t.app,
        authed("GET", "/api/scenarios/t1-01/files/migrations/0001_x.sql")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["content"].as_str(), body["draft"].as_str()),
        (Some(""), Some("create index"))
    );
    assert_eq!(
        send(&t.app, authed("DELETE", new).body(Body::empty()).unwrap())
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = json(
        &t.app,
        authed("GET", "/api/scenarios/t1-01/files/migrations/0001_x.sql")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn draft_paths_are_confined_like_files_and_need_the_token() {
    let t = test_ui();
    for uri in [
        "/api/scenarios/t1-01/drafts/../../../../tmp/x",
        "/api/scenarios/t1-01/drafts/%2e%2e/%2e%2e/progress.json",
    ] {
        let (status, body) = json(
            &t.app,
            authed("PUT", uri).body(Body::from("pwned")).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {uri}: {body}");
    }
    assert!(!t.lab.home.root.join("progress.json").exists());
    let (status, _) = json(
        &t.app,
        req("PUT", "/api/scenarios/t1-01/drafts/src/main.rs")
            .body(Body::from("x"))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn t1_01s_guide_has_observation_questions_bound_to_its_load_runs_figures() {
    let guide =
        std::fs::read_to_string(repo().join("scenarios/t1-01-diagnosing-failures/SCENARIO.md"))
            .unwrap();
    let questions = api::questions(&guide).unwrap();
    let figures: Vec<_> = questions
        .iter()
        .filter_map(|q| q.figure.as_deref())
        .collect();
    assert!(
        figures.contains(&"load.p95") && figures.contains(&"load.error_rate"),
        "{questions:?}"
    );
}

#[test]
fn every_scenarios_questions_parse() {
    for entry in std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .flatten()
    {
        let guide = entry.path().join("SCENARIO.md");
        if let Ok(text) = std::fs::read_to_string(&guide) {
            if let Err(e) = api::questions(&text) {
                panic!("{}: {e}", guide.display());
            }
        }
    }
}

#[tokio::test]
async fn answers_are_saved_with_the_progress_and_unknown_questions_are_404() {
    let t = test_ui();
    let put = |q: &str, body: &str| {
        authed("PUT", &format!("/api/scenarios/t1-01/answers/{q}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (status, body) = json(&t.app, put("observed-p95", r#"{"answer": "about 2 s"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["observed-p95"], "about 2 s");
    let (_, detail) = json(
        &t.app,
        authed("GET", "/api/scenarios/t1-01")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(detail["progress"]["answers"]["observed-p95"], "about 2 s");
    assert!(detail["questions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["figure"] == "load.p95"));
    let progress = std::fs::read_to_string(t.lab.home.progress_file()).unwrap();
    assert!(progress.contains("about 2 s"));

    let (status, body) = json(&t.app, put("no-such-question", r#"{"answer": "x"}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // An empty answer removes it.
    let (_, body) = json(&t.app, put("observed-p95", r#"{"answer": " "}"#)).await;
    assert!(body.get("observed-p95").is_none(), "{body}");
}

#[tokio::test]
async fn a_scenario_never_run_has_an_empty_history() {
    let t = test_ui();
    let (status, body) = json(
        &t.app,
        authed("GET", "/api/scenarios/t1-01/history")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::Array(Vec::new()));
}
