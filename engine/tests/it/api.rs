//! The HTTP API through its router (`oneshot`), over a lab in a temp home and the real
//! `scenarios/`: the security layer (token, Host, Origin, path confinement, body limit) and
//! the endpoints that need no PostgreSQL. One test serves on a real listener (port 0).

// Helpers unwrap too: a failed setup must fail the test loudly.
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

/// The port the router believes it serves on. Nothing binds it: requests go through
/// `oneshot`, and only the Host and Origin checks read it.
const PORT: u16 = 45123;
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

struct TestApi {
    home: tempfile::TempDir,
    lab: Lab,
    app: Router,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn test_api() -> TestApi {
    let home = tempfile::tempdir().unwrap();
    let lab = Lab::new(LabHome::at(home.path()), Sources::at(repo())).unwrap();
    let app = api::router(ApiState::new(lab.clone(), TOKEN, PORT).unwrap());
    TestApi { home, lab, app }
}

/// A request as the lab's own page sends it: right Host, bearer token.
fn req(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", format!("127.0.0.1:{PORT}"))
        .header("authorization", format!("Bearer {TOKEN}"))
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).to_string()));
    (status, value)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    send(app, req("GET", uri).body(Body::empty()).unwrap()).await
}

async fn put(app: &Router, uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    send(app, req("PUT", uri).body(body.into()).unwrap()).await
}

async fn post_json(app: &Router, uri: &str, body: &str) -> (StatusCode, Value) {
    send(
        app,
        req("POST", uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected {{\"error\": ...}}, got {body}"))
}

// --- security -------------------------------------------------------------------------

#[tokio::test]
async fn api_calls_without_the_token_are_refused_with_401() {
    let t = test_api();
    let no_token = Request::get("/api/scenarios")
        .header("host", format!("127.0.0.1:{PORT}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&t.app, no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error_of(&body).contains("token"));

    let wrong = Request::get("/api/scenarios")
        .header("host", format!("127.0.0.1:{PORT}"))
        .header("authorization", "Bearer 0123456789abcdef0123456789abcdeX")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, wrong).await.0, StatusCode::UNAUTHORIZED);

    let prefix = Request::get("/api/scenarios")
        .header("host", format!("127.0.0.1:{PORT}"))
        .header("authorization", "Bearer 0123456789abcdef")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, prefix).await.0, StatusCode::UNAUTHORIZED);

    // Unknown API paths are behind the token too: nothing about the API leaks without it.
    let unknown = Request::get("/api/nope")
        .header("host", format!("127.0.0.1:{PORT}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, unknown).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_is_accepted_in_the_query_only_for_event_streams() {
    let t = test_api();
    let with_query = |uri: String| {
        Request::get(uri)
            .header("host", format!("localhost:{PORT}"))
            .body(Body::empty())
            .unwrap()
    };
    // Past the guard: 409 because the scenario is not running, not 401.
    let (status, _) = send(
        &t.app,
        with_query(format!("/api/scenarios/t1-01/metrics/stream?token={TOKEN}")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = send(
        &t.app,
        with_query("/api/scenarios/t1-01/metrics/stream?token=nope".to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Elsewhere a token in the URL is not enough: it would end up in histories and logs.
    let (status, _) = send(&t.app, with_query(format!("/api/scenarios?token={TOKEN}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn requests_for_another_host_are_refused_with_403_against_dns_rebinding() {
    let t = test_api();
    for host in [
        format!("evil.example:{PORT}"),
        "127.0.0.1:1".to_string(),
        "127.0.0.1".to_string(),
        format!("127.0.0.2:{PORT}"),
    ] {
        let request = Request::get("/api/scenarios")
            .header("host", host.as_str())
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(&t.app, request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "Host {host}");
        assert!(error_of(&body).contains("Host"), "{body}");
    }
    // The page itself is host-checked too.
    let page = Request::get("/")
        .header("host", "evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, page).await.0, StatusCode::FORBIDDEN);
    let no_host = Request::get("/api/scenarios")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&t.app, no_host).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn requests_from_a_foreign_origin_are_refused_with_403() {
    let t = test_api();
    for origin in [
        "https://evil.example",
        "null",
        "http://127.0.0.1:1",
        &format!("https://127.0.0.1:{PORT}"),
    ] {
        let request = req("POST", "/api/scenarios/t1-01/stop")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(&t.app, request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "Origin {origin}");
        assert!(error_of(&body).contains("not allowed"));
    }
    for origin in [
        format!("http://127.0.0.1:{PORT}"),
        format!("http://localhost:{PORT}"),
    ] {
        let request = req("GET", "/api/scenarios")
            .header("origin", origin.as_str())
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            send(&t.app, request).await.0,
            StatusCode::OK,
            "Origin {origin}"
        );
    }
}

#[tokio::test]
async fn an_origin_registered_by_the_shell_is_accepted() {
    let t = test_api();
    let app = api::router(
        ApiState::new(t.lab.clone(), TOKEN, PORT)
            .unwrap()
            .allow_origin("tauri://localhost"),
    );
    let request = req("GET", "/api/scenarios")
        .header("origin", "tauri://localhost")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_host_and_origin_registered_for_a_proxy_are_accepted() {
    let t = test_api();
    let state = ApiState::new(t.lab.clone(), TOKEN, PORT)
        .unwrap()
        .allow_host("lab-45123.app.example")
        .allow_origin("https://lab-45123.app.example");
    let app = api::router(state);
    let proxied = |host: &str, origin: &str| {
        Request::get("/api/scenarios")
            .header("host", host)
            .header("origin", origin)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap()
    };
    let ok = proxied("lab-45123.app.example", "https://lab-45123.app.example");
    assert_eq!(send(&app, ok).await.0, StatusCode::OK);
    let other = proxied("lab-9.app.example", "https://lab-45123.app.example");
    assert_eq!(send(&app, other).await.0, StatusCode::FORBIDDEN);
}

#[test]
fn short_tokens_are_refused_and_new_tokens_are_64_hex_digits() {
    let t = test_api();
    assert!(ApiState::new(t.lab.clone(), "short", PORT).is_err());
    let (a, b) = (api::new_token(), api::new_token());
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}

// --- scenarios ------------------------------------------------------------------------

#[tokio::test]
async fn the_scenario_list_names_t1_01_with_its_progress() {
    let t = test_api();
    let (status, body) = get(&t.app, "/api/scenarios").await;
    assert_eq!(status, StatusCode::OK);
    let first = body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "t1-01")
        .unwrap();
    assert_eq!(first["title"], "Diagnosing Failures");
    assert_eq!(first["track"], 1);
    assert_eq!(first["stage"], "crawling");
    assert!(first["minutes"].as_u64().unwrap() > 0);
    assert_eq!(first["progress"]["checks_run"], 0);
    assert_eq!(first["progress"]["passed"], false);
}

#[tokio::test]
async fn a_scenario_opens_with_its_guide_and_hint_count() {
    let t = test_api();
    let (status, body) = get(&t.app, "/api/scenarios/t1-01").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["guide"].as_str().unwrap().contains("## Situation"),
        "{}",
        body["guide"]
    );
    assert!(body["hints"].as_u64().unwrap() >= 1);
    assert_eq!(body["postgres"], true);
    assert_eq!(body["id"], "t1-01");

    let (status, body) = get(&t.app, "/api/scenarios/t9-99").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_of(&body).contains("t9-99"));
}

#[tokio::test]
async fn a_scenario_never_started_is_stopped_and_stopping_it_is_harmless() {
    let t = test_api();
    let (status, body) = get(&t.app, "/api/scenarios/t1-01/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "stopped");
    let (status, body) = post_json(&t.app, "/api/scenarios/t1-01/stop", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "stopped");
    // No live metrics or load for a scenario that is not running (a check brings up its
    // own lab: see the real start below).
    assert_eq!(
        get(&t.app, "/api/scenarios/t1-01/metrics/stream").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post_json(&t.app, "/api/scenarios/t1-01/load", "").await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        get(&t.app, "/api/scenarios/t1-01/job").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn load_requests_are_validated_before_anything_runs() {
    let t = test_api();
    for (body, expected) in [
        (r#"{"profile": "nope"}"#, "no load profile"),
        (r#"{"rate": 0}"#, "rate"),
        (r#"{"rate": 1e9}"#, "rate"),
        (r#"{"duration": 3600}"#, "duration"),
        (r#"{"users": 3}"#, "unknown field"),
    ] {
        let (status, reply) = post_json(&t.app, "/api/scenarios/t1-01/load", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert!(error_of(&reply).contains(expected), "{body}: {reply}");
    }
}

#[tokio::test]
async fn logs_of_a_scenario_never_run_are_empty_and_instances_are_checked() {
    let t = test_api();
    let (status, body) = get(&t.app, "/api/scenarios/t1-01/logs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["lines"], serde_json::json!([]));

    let dir = t.home.path().join("logs/t1-01");
    std::fs::create_dir_all(&dir).unwrap();
    let log: String = (1..=300).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("service-1.log"), log).unwrap();
    let (_, body) = get(&t.app, "/api/scenarios/t1-01/logs?lines=3").await;
    assert_eq!(
        body["lines"],
        serde_json::json!(["line 298", "line 299", "line 300"])
    );

    let (status, body) = get(&t.app, "/api/scenarios/t1-01/logs?instance=9").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("instance 9"));
}

#[tokio::test]
async fn a_workers_log_is_read_by_its_number_and_the_topology_bounds_it() {
    let t = test_api();
    let (_, detail) = get(&t.app, "/api/scenarios/t1-09").await;
    assert_eq!(
        (detail["instances"].as_u64(), detail["workers"].as_u64()),
        (Some(1), Some(2))
    );
    let (_, detail) = get(&t.app, "/api/scenarios/t1-01").await;
    assert_eq!(detail["workers"], 0);
    let dir = t.home.path().join("logs/t1-09");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("service-1.log"), "web line\n").unwrap();
    std::fs::write(dir.join("worker-2.log"), "shipped order 7\n").unwrap();
    let (status, body) = get(&t.app, "/api/scenarios/t1-09/logs?worker=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["lines"], serde_json::json!(["shipped order 7"]));
    assert_eq!(body["worker"], 2);
    let (_, body) = get(&t.app, "/api/scenarios/t1-09/logs?worker=1").await;
    assert_eq!(
        body["lines"],
        serde_json::json!([]),
        "worker 1 has not written yet"
    );
    let (_, body) = get(&t.app, "/api/scenarios/t1-09/logs").await;
    assert_eq!(body["lines"], serde_json::json!(["web line"]));
    for (query, expected) in [
        ("worker=3", "has workers 1 to 2"),
        ("worker=0", "has workers 1 to 2"),
        ("worker=1&instance=1", "not both"),
    ] {
        let (status, body) = get(&t.app, &format!("/api/scenarios/t1-09/logs?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(error_of(&body).contains(expected), "{query}: {body}");
    }
    let (status, body) = get(&t.app, "/api/scenarios/t1-01/logs?worker=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("has no workers"), "{body}");
}

#[tokio::test]
async fn logs_filtered_by_request_id_give_that_requests_json_lines_parsed() {
    let t = test_api();
    let dir = t.home.path().join("logs/t1-01");
    std::fs::create_dir_all(&dir).unwrap();
    // tracing-subscriber's json lines (flattened, and with the ID on a span) and a text line.
    let log = [
        r#"{"timestamp":"2026-11-30T23:38:51.1Z","level":"INFO","message":"order saved","request_id":"r-1","status":200}"#,
        r#"{"timestamp":"2026-11-30T23:38:51.2Z","level":"INFO","message":"other","request_id":"r-2"}"#,
        r#"{"timestamp":"2026-11-30T23:38:51.3Z","level":"WARN","fields":{"message":"slow query"},"spans":[{"request_id":"r-1","name":"request"}]}"#,
        "2026-11-30T23:38:51.4Z  INFO svc: mentions r-1 in text",
    ]
    .join("\n");
    std::fs::write(dir.join("service-1.log"), log + "\n").unwrap();
    let (status, body) = get(&t.app, "/api/scenarios/t1-01/logs?request=r-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["lines"].as_array().unwrap().len(), 2, "{body}");
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries[0]["json"], true);
    assert_eq!(entries[0]["level"], "INFO");
    assert_eq!(entries[0]["message"], "order saved");
    assert_eq!(entries[0]["request_id"], "r-1");
    assert_eq!(entries[0]["fields"]["status"], "200");
    assert_eq!(entries[1]["message"], "slow query");
    assert_eq!(entries[1]["request_id"], "r-1");
    let (_, all) = get(&t.app, "/api/scenarios/t1-01/logs").await;
    assert_eq!(all["entries"].as_array().unwrap().len(), 4);
    assert_eq!(all["entries"][3]["json"], false);
}

#[tokio::test]
async fn the_log_stream_sends_the_tail_then_new_lines() {
    let t = test_api();
    let dir = t.home.path().join("logs/t1-01");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("service-1.log");
    std::fs::write(&log, "old 1\nold 2\n").unwrap();
    let request = Request::get(format!(
        "/api/scenarios/t1-01/logs/stream?lines=1&token={TOKEN}"
    ))
    .header("host", format!("127.0.0.1:{PORT}"))
    .body(Body::empty())
    .unwrap();
    let response = t.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut next = async || {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    };
    let first = next().await;
    assert!(
        first.contains("event: lines") && first.contains("old 2") && !first.contains("old 1"),
        "{first}"
    );
    // The same lines parsed follow each `lines` event.
    let parsed = next().await;
    assert!(
        parsed.contains("event: entries") && parsed.contains(r#""raw":"old 2""#),
        "{parsed}"
    );
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"new 3\nhalf").unwrap();
    let second = next().await;
    assert!(
        second.contains("new 3") && !second.contains("half"),
        "{second}"
    );
}

#[tokio::test]
async fn the_read_only_console_refuses_statements_that_would_end_its_transaction() {
    let t = test_api();
    let (status, body) = post_json(
        &t.app,
        "/api/scenarios/t1-01/sql",
        r#"{"query": "select 1; COMMIT; drop table posts"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("read-only"), "{body}");

    let (status, body) = post_json(
        &t.app,
        "/api/scenarios/t1-01/sql",
        r#"{"query": "  -- nothing\n ; "}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("empty"));

    let (status, body) =
        post_json(&t.app, "/api/scenarios/t1-01/sql", r#"{"sql": "select 1"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("query"));
}

/// A scenario with `[topology.redis]` (and no PostgreSQL), alone in its own sources: the
/// Redis console's tests need no scenario of the catalog to have Redis.
const REDIS_TOML: &str = r#"
id = "t2-96"
title = "Redis console fixture"
track = 2
stage = "crawling"
concepts = ["testing"]
minutes = 1
hints = ["h"]

[topology]
instances = 1

[topology.redis]
maxmemory = "2mb"
policy = "allkeys-lru"

[[requests]]
name = "hello"
method = "GET"
path = "/"
oracle = { status = [200], hint = "Hello." }

[profiles.check]
description = "A few requests."
timeout = "1s"
stages = [{ duration = "2s", rate = 10 }]
mix = { hello = 1 }

[check]
profile = "check"

[[check.slo]]
metric = "error_rate"
max = 0.01
hint = "Errors."
"#;

#[tokio::test]
async fn the_redis_console_runs_reads_and_refuses_writes_unless_asked_and_needs_the_lab() {
    let sources = tempfile::tempdir().unwrap();
    let dir = sources.path().join("scenarios/t2-96-redis-console");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scenario.toml"), REDIS_TOML).unwrap();
    std::fs::write(dir.join("SCENARIO.md"), "# Redis console fixture\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let lab = Lab::new(LabHome::at(home.path()), Sources::at(sources.path())).unwrap();
    let app = api::router(ApiState::new(lab.clone(), TOKEN, PORT).unwrap());
    let console = "/api/scenarios/t2-96/redis";

    // The UI learns from the scenario that there is a Redis to show.
    let (status, body) = get(&app, "/api/scenarios/t2-96").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redis"], true);
    // Redis runs only with the lab: nothing is started for the console.
    let (status, body) = post_json(&app, console, r#"{"command": "PING"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error_of(&body).contains("sdlab start t2-96"), "{body}");
    let (status, body) = post_json(&app, console, r#"{"cmd": "PING"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("command"), "{body}");

    // A lab another sdlab process runs (this test stands in for it): its run state names
    // the Redis, as `sdlab start` writes it.
    let redis = redis_server_embedded::Redis::start(redis_server_embedded::RedisOptions::new(
        home.path().join("redis"),
    ))
    .await
    .unwrap();
    let me = std::process::id();
    let scenario = lab.catalog.get("t2-96").unwrap();
    sdlab_engine::process::RunState {
        scenario: scenario.id.clone(),
        owner_pid: me,
        owner_start_time: sdlab_engine::process::start_time(me),
        postgres_url: None,
        postmaster_pid: None,
        replica_url: None,
        replica_pid: None,
        services: Vec::new(),
        workers: Vec::new(),
        nginx_url: None,
        redis_url: Some(redis.url()),
        metrics_port: None,
    }
    .write(&sdlab_engine::process::RunState::path(
        &lab.home.run_dir(),
        &scenario.id,
    ))
    .unwrap();

    assert_eq!(
        redis
            .command(&["SET", "a key", "v"])
            .await
            .unwrap()
            .text()
            .unwrap(),
        "OK"
    );
    let (status, body) = post_json(&app, console, r#"{"command": "GET \"a key\""}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reply"], "\"v\"\n");
    assert_eq!(body["read_only"], true);
    let (status, body) = post_json(&app, console, r#"{"command": "CONFIG GET maxmemory"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["reply"].as_str().unwrap().contains("maxmemory"),
        "{body}"
    );
    // Redis's own error replies are replies, not API errors.
    let (status, body) = post_json(&app, console, r#"{"command": "NOSUCH"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["reply"]
        .as_str()
        .unwrap()
        .starts_with("(error) ERR unknown command"));

    // Read-only by default: writes and admin commands are refused before they are sent.
    for command in [
        "SET \"a key\" w",
        "FLUSHALL",
        "CONFIG SET maxmemory-policy noeviction",
    ] {
        let request = serde_json::json!({ "command": command }).to_string();
        let (status, body) = post_json(&app, console, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{command}: {body}");
        assert!(error_of(&body).contains("\"write\": true"), "{body}");
    }
    let (status, body) = post_json(&app, console, r#"{"command": "MONITOR", "write": true}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("redis-cli -p"), "{body}");
    let (status, body) = post_json(&app, console, r#"{"command": "GET \"open"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("quote"), "{body}");
    assert_eq!(
        redis
            .command(&["GET", "a key"])
            .await
            .unwrap()
            .text()
            .unwrap(),
        "v",
        "nothing refused reached Redis"
    );

    // Asked as a write, it runs.
    let (status, body) = post_json(
        &app,
        console,
        r#"{"command": "SET \"a key\" w", "write": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reply"], "OK\n");
    assert_eq!(body["read_only"], false);
    assert_eq!(
        redis
            .command(&["GET", "a key"])
            .await
            .unwrap()
            .text()
            .unwrap(),
        "w"
    );

    // The token guards it as every route.
    let request = Request::builder()
        .method("POST")
        .uri(console)
        .header("host", format!("127.0.0.1:{PORT}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"command": "PING"}"#))
        .unwrap();
    assert_eq!(send(&app, request).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_scenario_without_redis_has_no_redis_console() {
    let t = test_api();
    let (_, body) = get(&t.app, "/api/scenarios/t1-01").await;
    assert_eq!(body["redis"], false);
    let (status, body) = post_json(
        &t.app,
        "/api/scenarios/t1-01/redis",
        r#"{"command": "PING"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("no Redis"), "{body}");
}

#[tokio::test]
async fn hints_are_revealed_one_at_a_time_and_remembered() {
    let t = test_api();
    let (status, body) = get(&t.app, "/api/scenarios/t1-01/hints").await;
    assert_eq!(status, StatusCode::OK);
    let total = body["total"].as_u64().unwrap() as usize;
    assert!(total >= 2);
    assert_eq!(body["shown"], serde_json::json!([]));
    let (_, body) = post_json(&t.app, "/api/scenarios/t1-01/hints/next", "").await;
    assert_eq!(body["shown"].as_array().unwrap().len(), 1);
    let hints = &t.lab.scenario("t1-01").unwrap().hints;
    assert_eq!(body["shown"][0], hints[0].as_str());
    for _ in 0..total + 2 {
        post_json(&t.app, "/api/scenarios/t1-01/hints/next", "").await;
    }
    let (_, body) = get(&t.app, "/api/scenarios/t1-01/hints").await;
    assert_eq!(body["shown"].as_array().unwrap().len(), total);
    let (_, list) = get(&t.app, "/api/scenarios").await;
    let t101 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "t1-01")
        .unwrap();
    assert_eq!(t101["progress"]["hints_shown"], total);
}

#[tokio::test]
async fn the_solution_asks_for_confirmation_before_the_first_check() {
    let t = test_api();
    let (status, body) = post_json(&t.app, "/api/scenarios/t1-01/solution", "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error_of(&body).contains("confirm"));
    let (_, list) = get(&t.app, "/api/scenarios").await;
    assert_eq!(list[0]["progress"]["solution_revealed"], false);

    let (status, body) = post_json(
        &t.app,
        "/api/scenarios/t1-01/solution",
        r#"{"confirm": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["notes"].as_str().unwrap().is_empty());
    let files: Vec<&str> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"src/main.rs") && files.contains(&"Cargo.toml"),
        "{files:?}"
    );
    assert!(!files.contains(&"SOLUTION.md"));
    // Once revealed, it stays available without asking.
    assert_eq!(
        post_json(&t.app, "/api/scenarios/t1-01/solution", "")
            .await
            .0,
        StatusCode::OK
    );
}

// --- files ----------------------------------------------------------------------------

#[tokio::test]
async fn the_file_tree_is_the_learners_copy_of_the_service_made_on_first_use() {
    let t = test_api();
    let (status, body) = get(&t.app, "/api/scenarios/t1-01/files").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let root = PathBuf::from(body["root"].as_str().unwrap());
    assert!(root.starts_with(t.home.path()), "{}", root.display());
    assert!(root.join("Cargo.toml").is_file());
    let entries = body["entries"].as_array().unwrap();
    // Folders first.
    assert_eq!(entries[0]["kind"], "dir");
    let src = entries.iter().find(|e| e["name"] == "src").unwrap();
    let main = src["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "main.rs")
        .unwrap();
    assert_eq!(main["path"], "src/main.rs");
    assert_eq!(main["kind"], "file");
    assert!(entries.iter().any(|e| e["path"] == "Cargo.toml"));
}

#[tokio::test]
async fn files_read_and_save_round_trip_and_saves_leave_no_temp_files() {
    let t = test_api();
    let (status, body) = get(&t.app, "/api/scenarios/t1-01/files/src/main.rs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["content"].as_str().unwrap().starts_with("//!"));

    let edited = "//! edited by the test\nfn main() {}\n";
    let (status, body) = put(&t.app, "/api/scenarios/t1-01/files/src/main.rs", edited).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bytes"], edited.len());
    let (_, body) = get(&t.app, "/api/scenarios/t1-01/files/src/main.rs").await;
    assert_eq!(body["content"], edited);

    // A new file in a new folder.
    let (status, _) = put(
        &t.app,
        "/api/scenarios/t1-01/files/migrations/001_index.sql",
        "select 1;\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let dir = t
        .lab
        .home
        .learner_service_dir(t.lab.scenario("t1-01").unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.join("migrations/001_index.sql")).unwrap(),
        "select 1;\n"
    );
    let litter: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("sdlab-tmp"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");

    let (status, _) = get(&t.app, "/api/scenarios/t1-01/files/src/nope.rs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = put(&t.app, "/api/scenarios/t1-01/files/src", "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("folder"));
    let (status, body) = put(&t.app, "/api/scenarios/t1-01/files/Cargo.toml/x", "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("through a file"), "{body}");
}

#[tokio::test]
async fn paths_with_dot_dot_or_absolute_paths_are_refused_with_400() {
    let t = test_api();
    let uris = [
        "/api/scenarios/t1-01/files/../../../../etc/passwd",
        "/api/scenarios/t1-01/files/src/..%2F..%2FCargo.toml",
        "/api/scenarios/t1-01/files/%2e%2e/%2e%2e/kit/src/lib.rs",
        "/api/scenarios/t1-01/files/%2Fetc%2Fpasswd",
        "/api/scenarios/t1-01/files//etc/passwd",
    ];
    for uri in uris {
        let (status, body) = get(&t.app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "GET {uri}: {body}");
        let error = error_of(&body);
        assert!(error.contains("not allowed"), "GET {uri}: {error}");
        let (status, body) = put(&t.app, uri, "pwned").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {uri}: {body}");
    }
    // Nothing was written next to the service.
    let work = t.home.path().join("work");
    assert!(!work.join("t1-01-diagnosing-failures/Cargo.toml").exists());
}

#[tokio::test]
async fn symlinks_that_lead_outside_the_service_folder_are_refused_with_400() {
    let t = test_api();
    assert_eq!(
        get(&t.app, "/api/scenarios/t1-01/files").await.0,
        StatusCode::OK
    );
    let dir = t
        .lab
        .home
        .learner_service_dir(t.lab.scenario("t1-01").unwrap());
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.join("secret.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("missing/x"), dir.join("dangling")).unwrap();
    // A symlink that stays inside is fine.
    std::os::unix::fs::symlink(dir.join("src/main.rs"), dir.join("main-link.rs")).unwrap();

    for path in [
        "escape/secret.txt",
        "secret.txt",
        "escape/new.txt",
        "dangling",
        "dangling/y",
    ] {
        let uri = format!("/api/scenarios/t1-01/files/{path}");
        let (status, body) = get(&t.app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "GET {path}: {body}");
        assert!(error_of(&body).contains("symlink"), "GET {path}: {body}");
        let (status, body) = put(&t.app, &uri, "pwned").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {path}: {body}");
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "secret"
    );
    assert!(!outside.path().join("new.txt").exists());
    assert!(!outside.path().join("missing").exists());

    let (status, body) = get(&t.app, "/api/scenarios/t1-01/files/main-link.rs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The tree lists the inside link, not the escaping ones.
    let (_, tree) = get(&t.app, "/api/scenarios/t1-01/files").await;
    let names: Vec<&str> = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"main-link.rs"), "{names:?}");
    assert!(
        !names.contains(&"escape")
            && !names.contains(&"secret.txt")
            && !names.contains(&"dangling"),
        "{names:?}"
    );
}

#[tokio::test]
async fn saves_larger_than_the_limit_are_refused_with_413() {
    let t = test_api();
    let big = vec![b'a'; api::MAX_FILE_BYTES + 1];
    let (status, body) = put(&t.app, "/api/scenarios/t1-01/files/src/big.rs", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(error_of(&body).contains("larger"));
    let (status, _) = put(
        &t.app,
        "/api/scenarios/t1-01/files/src/bin.rs",
        vec![0xff, 0xfe, 0x00],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn resetting_the_code_backs_it_up_and_restores_the_broken_service() {
    let t = test_api();
    let (status, _) = put(
        &t.app,
        "/api/scenarios/t1-01/files/src/main.rs",
        "//! mine\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post_json(
        &t.app,
        "/api/scenarios/t1-01/reset",
        r#"{"database": false}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["code_reset"], true);
    assert_eq!(body["database_reset"], false);
    let backup = PathBuf::from(body["backup"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(backup.join("src/main.rs")).unwrap(),
        "//! mine\n"
    );
    let (_, body) = get(&t.app, "/api/scenarios/t1-01/files/src/main.rs").await;
    let original = std::fs::read_to_string(
        repo().join("scenarios/t1-01-diagnosing-failures/service/src/main.rs"),
    )
    .unwrap();
    assert_eq!(body["content"], original);

    let (status, _) = post_json(
        &t.app,
        "/api/scenarios/t1-01/reset",
        r#"{"everything": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

// --- a real listener --------------------------------------------------------------------

#[tokio::test]
async fn serve_answers_on_a_loopback_listener_and_stops_on_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = test_api();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(
        listener,
        t.lab.clone(),
        TOKEN.to_string(),
        async {
            let _ = stopped.await;
        },
    ));
    let ask = |host: String| async move {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let request = format!("GET /api/scenarios HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    };
    let ok = ask(format!("127.0.0.1:{port}")).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("t1-01"));
    let rebound = ask(format!("attacker.example:{port}")).await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    stop.send(()).unwrap();
    let served = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(served.is_ok(), "{served:?}");

    let wide = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = api::serve(wide, t.lab.clone(), TOKEN.to_string(), async {}).await;
    assert!(
        matches!(refused, Err(api::ApiError::Config(_))),
        "{refused:?}"
    );
}

// --- one real start ---------------------------------------------------------------------

/// The one test that starts t1-01 for real through the API: PostgreSQL (seeded), a build in
/// the shared target dir, the service; then the console, logs, and a stop that brings it all
/// down. About 40 s on a fresh home (the seed dominates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_start_through_the_api_runs_t1_01_until_stop() {
    use std::os::unix::fs::PermissionsExt;
    // Under /tmp and enterable by `nobody`, who runs PostgreSQL when the tests run as root.
    let home = tempfile::Builder::new()
        .prefix("sdlab-api-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut lab = Lab::new(
        LabHome::at(home.path()).with_target_dir(repo().join("target/sdlab-services")),
        Sources::at(repo()),
    )
    .unwrap();
    // The full check below holds its steady rate 5 s, as SDLAB_CHECK_HOLD_SECS=5 would.
    for scenario in &mut lab.catalog.scenarios {
        scenario
            .check
            .profile
            .hold_at_most(std::time::Duration::from_secs(5));
    }
    let app = api::router(ApiState::new(lab.clone(), TOKEN, PORT).unwrap());

    let (status, body) = post_json(&app, "/api/scenarios/t1-01/start", "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"], "starting");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut steps = std::collections::BTreeSet::new();
    let body = loop {
        let (_, body) = get(&app, "/api/scenarios/t1-01/status").await;
        if let Some(step) = body["step"].as_str() {
            steps.insert(step.to_string());
        }
        match body["state"].as_str().unwrap() {
            "running" => break body,
            "starting" => {}
            other => panic!("the start ended {other}: {body}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still starting after 300 s: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let url = body["url"].as_str().unwrap().to_string();
    // One instance and no nginx: requests enter at instance 1; no CPU share in t1-01.
    assert_eq!(body["entry"], body["url"], "{body}");
    assert!(body["cpu_limit"].is_null(), "{body}");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let finished: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "finished")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    for step in [
        "init database",
        "seed rows",
        "build service",
        "start service",
    ] {
        assert!(finished.contains(&step), "{step} missing from {finished:?}");
    }
    let (code, _) =
        sdlab_engine::metrics::http_get(port, "/healthz", std::time::Duration::from_secs(2))
            .await
            .unwrap();
    assert_eq!(code, 200);

    // Starting it again is harmless; resetting under a running service is refused.
    let (status, body) = post_json(&app, "/api/scenarios/t1-01/start", "").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::ACCEPTED, Some("running"))
    );
    assert_eq!(
        post_json(&app, "/api/scenarios/t1-01/reset", "").await.0,
        StatusCode::CONFLICT
    );

    // The console reads through the running lab's database, read-only.
    let (status, body) = post_json(
        &app,
        "/api/scenarios/t1-01/sql",
        r#"{"query": "select count(*) > 0 as seeded from posts; explain select 1"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read_only"], true);
    assert_eq!(body["results"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["results"][0]["rows"][0][0], "t");
    let (status, body) = post_json(
        &app,
        "/api/scenarios/t1-01/sql",
        r#"{"query": "delete from posts"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_of(&body).contains("read-only transaction"), "{body}");

    let (_, body) = get(&app, "/api/scenarios/t1-01/logs").await;
    assert!(!body["lines"].as_array().unwrap().is_empty(), "{body}");

    // The live metrics stream (token in the query, as EventSource sends it) sends samples.
    let request = Request::get(format!("/api/scenarios/t1-01/metrics/stream?token={TOKEN}"))
        .header("host", format!("127.0.0.1:{PORT}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.into_body();
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(
        text.contains("event: sample") && text.contains("\"services\""),
        "{text}"
    );
    drop(body);

    // A short, light load run: per-second stats, then a summary.
    let (status, body) = post_json(
        &app,
        "/api/scenarios/t1-01/load",
        r#"{"rate": 5, "duration": 3}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        post_json(&app, "/api/scenarios/t1-01/check", "").await.0,
        StatusCode::CONFLICT
    );
    let job = wait_for_job(&app).await;
    assert_eq!(job["state"], "done", "{job}");
    assert!(job["summary"]["sent"].as_u64().unwrap() >= 10, "{job}");
    assert!(!job["seconds"].as_array().unwrap().is_empty(), "{job}");
    // The run is in the history, with its seconds (the UI's "before" overlay).
    let (_, history) = get(&app, "/api/scenarios/t1-01/history").await;
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{history}");
    assert_eq!(runs[0]["kind"], "load");
    assert_eq!(runs[0]["summary"]["sent"], job["summary"]["sent"]);
    assert_eq!(
        runs[0]["seconds"].as_array().unwrap().len(),
        job["seconds"].as_array().unwrap().len()
    );

    // A check can be cancelled, and a cancelled check does not count.
    let (status, body) = post_json(&app, "/api/scenarios/t1-01/check", "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["kind"], "check");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        send(
            &app,
            req("POST", "/api/scenarios/t1-01/job/cancel")
                .body(Body::empty())
                .unwrap()
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    let job = wait_for_job(&app).await;
    assert_eq!(job["state"], "failed", "{job}");
    let (_, list) = get(&app, "/api/scenarios").await;
    assert_eq!(list[0]["progress"]["checks_run"], 0);
    let (_, history) = get(&app, "/api/scenarios/t1-01/history").await;
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "a cancelled check is not history: {history}"
    );

    // The console says when a write changed the schema (the check will not see it), and only
    // then.
    let (status, body) = post_json(
        &app,
        "/api/scenarios/t1-01/sql",
        r#"{"query": "-- by hand\nCREATE INDEX by_hand ON posts (created_at DESC)", "write": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["note"]
            .as_str()
            .is_some_and(|n| n.contains("not in migrations/")),
        "{body}"
    );
    for (query, write) in [("select count(*) from users", false), ("select 1", true)] {
        let request = serde_json::json!({ "query": query, "write": write }).to_string();
        let (status, body) = post_json(&app, "/api/scenarios/t1-01/sql", &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["note"].is_null(), "{query}: {body}");
    }

    // A full check runs the learner's (broken) code in its own lab, on a fresh copy of the
    // seeded database with its migrations: the index made by hand above does not count, and
    // the playground keeps running on its own port.
    let (status, body) = post_json(&app, "/api/scenarios/t1-01/check", "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = wait_for_job(&app).await;
    assert_eq!(job["state"], "done", "{job}");
    assert!(!job["seconds"].as_array().unwrap().is_empty(), "{job}");
    assert_eq!(job["check"]["passed"], false, "{job}");
    let plan = job["check"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["label"]
                .as_str()
                .unwrap()
                .contains("feed query uses an index")
        })
        .unwrap_or_else(|| panic!("no plan line: {job}"));
    assert_eq!(
        plan["passed"], false,
        "the index typed in the console counted: {plan}"
    );
    let (_, body) = get(&app, "/api/scenarios/t1-01/status").await;
    assert_eq!(body["state"], "running", "{body}");
    assert_eq!(
        body["url"],
        url.as_str(),
        "the playground was not restarted"
    );
    let (code, _) =
        sdlab_engine::metrics::http_get(port, "/healthz", std::time::Duration::from_secs(2))
            .await
            .unwrap();
    assert_eq!(code, 200);
    let (_, list) = get(&app, "/api/scenarios").await;
    assert_eq!(
        list[0]["progress"]["checks_run"], 1,
        "the check is recorded"
    );

    // A saved edit reaches the service through a restart (rebuild, restart).
    let (_, main) = get(&app, "/api/scenarios/t1-01/files/src/main.rs").await;
    let main = main["content"].as_str().unwrap().to_string();
    let touched = format!("{main}\n// Touched by the API test.\n");
    assert_eq!(
        put(&app, "/api/scenarios/t1-01/files/src/main.rs", touched)
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = post_json(&app, "/api/scenarios/t1-01/restart", "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let body = wait_for_start(&app).await;
    assert_eq!(body["state"], "running", "{body}");
    let port = body["url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();

    let (status, body) = post_json(&app, "/api/scenarios/t1-01/stop", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "stopped", "{body}");
    assert!(
        sdlab_engine::metrics::http_get(port, "/healthz", std::time::Duration::from_secs(1))
            .await
            .is_err()
    );
    assert!(lab.live_state(lab.scenario("t1-01").unwrap()).is_none());

    // Code that does not compile: the start fails with the compiler's diagnostics.
    let broken = format!("{main}\nfn broken( {{\n");
    assert_eq!(
        put(&app, "/api/scenarios/t1-01/files/src/main.rs", broken)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        post_json(&app, "/api/scenarios/t1-01/start", "").await.0,
        StatusCode::ACCEPTED
    );
    let body = wait_for_start(&app).await;
    assert_eq!(body["state"], "failed", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("does not compile"),
        "{body}"
    );
    let diagnostics = body["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.contains("error") && diagnostics.contains("src/main.rs"),
        "{diagnostics}"
    );
    assert!(lab.live_state(lab.scenario("t1-01").unwrap()).is_none());

    // A check needs no running playground: it starts PostgreSQL for its own lab (here the
    // build fails, with the compiler's diagnostics) and leaves nothing running.
    let (status, body) = post_json(&app, "/api/scenarios/t1-01/check", "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = wait_for_job(&app).await;
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("does not compile") && error.contains("src/main.rs"),
        "{error}"
    );
    let (_, body) = get(&app, "/api/scenarios/t1-01/status").await;
    assert_eq!(
        body["state"], "failed",
        "the playground's last start: {body}"
    );
    assert!(lab.live_state(lab.scenario("t1-01").unwrap()).is_none());
}

/// Polls the status until the start is over (running or failed).
async fn wait_for_start(app: &Router) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let (_, body) = get(app, "/api/scenarios/t1-01/status").await;
        if body["state"] != "starting" {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still starting after 300 s: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Polls the job until it is no longer running.
async fn wait_for_job(app: &Router) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (status, job) = get(app, "/api/scenarios/t1-01/job").await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["state"] != "running" {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job still running: {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
