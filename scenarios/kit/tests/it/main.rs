//! Integration tests for sdlab-kit: the wrapped router answers and `/metrics` shows what a
//! scenario's charts and checks read.

// Helpers outside #[test] functions are not covered by allow-unwrap-in-tests; in a test
// binary a panic is the failure report, so unwrap is right here too.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "redis")]
mod cache;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use sdlab_kit::{Config, Db, DbOptions};
use std::time::Duration;
use tower::ServiceExt;

fn config() -> Config {
    Config::from_lookup(|name| match name {
        "PORT" => Some("4000".to_owned()),
        "DATABASE_URL" => Some("postgres://postgres@127.0.0.1:1/none".to_owned()),
        "INSTANCE_ID" => Some("7".to_owned()),
        _ => None,
    })
    .unwrap()
}

async fn get_text(router: &Router, uri: &str) -> (StatusCode, String) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_show_http_and_pool_series_after_a_request() {
    let config = config();
    // A lazy pool never connects, so this test needs no database; its gauges still report.
    let _db = Db::connect_lazy(
        &config.database_url,
        DbOptions {
            max_connections: 6,
            min_connections: 0,
            acquire_timeout: Duration::from_millis(100),
            idle_timeout: None,
        },
    )
    .unwrap();
    let app = Router::new()
        .route("/users/{id}/posts", get(|| async { "[]" }))
        .with_state(());
    let router = sdlab_kit::router(app, &config);

    assert_eq!(get_text(&router, "/users/42/posts").await.0, StatusCode::OK);
    assert_eq!(get_text(&router, "/nowhere").await.0, StatusCode::NOT_FOUND);
    let (status, body) = get_text(&router, "/metrics").await;

    assert_eq!(status, StatusCode::OK);
    for expected in [
        // The route pattern, not the raw path, keeps series bounded.
        r#"http_requests_total{route="/users/{id}/posts",status="200"} 1"#,
        r#"http_requests_total{route="unmatched",status="404"} 1"#,
        r#"http_request_duration_seconds_bucket{route="/users/{id}/posts",le="0.005"}"#,
        r#"http_request_duration_seconds_count{route="/users/{id}/posts"} 1"#,
        "http_requests_in_flight 0",
        r#"service_info{instance="7"} 1"#,
        "db_pool_max 6",
        "db_pool_size 0",
        "db_pool_idle 0",
        "db_pool_in_use 0",
        "db_pool_waiting 0",
        "db_pool_acquire_timeouts_total 0",
        "# HELP db_pool_waiting",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in:\n{body}");
    }
    // Scrapes and probes are not traffic.
    assert!(!body.contains(r#"route="/metrics""#), "{body}");
}

#[tokio::test]
async fn unlabelled_http_metrics_export_one_histogram_and_still_count_by_route() {
    let app = Router::new()
        .route("/reports/{day}", get(|| async { "{}" }))
        .with_state(());
    let options = sdlab_kit::ServeOptions {
        http_metrics: sdlab_kit::HttpMetrics::Unlabelled,
    };
    let router = sdlab_kit::router_with(app, &config(), options);

    assert_eq!(get_text(&router, "/reports/7").await.0, StatusCode::OK);
    let (_, body) = get_text(&router, "/metrics").await;

    // Other tests share the process's recorder, so the unlabelled count is at least ours.
    assert!(
        body.lines()
            .any(|line| line.starts_with("http_request_duration_seconds_count ")),
        "no unlabelled histogram in:\n{body}"
    );
    assert!(
        !body.contains(r#"http_request_duration_seconds_count{route="/reports/{day}"}"#),
        "{body}"
    );
    assert!(
        body.contains(r#"http_requests_total{route="/reports/{day}",status="200"} 1"#),
        "{body}"
    );
}

#[tokio::test]
async fn healthz_answers_ok_without_a_database() {
    let router = sdlab_kit::router(Router::new(), &config());
    assert_eq!(
        get_text(&router, "/healthz").await,
        (StatusCode::OK, "ok".to_owned())
    );
}

#[tokio::test]
async fn pool_timeout_counts_and_answers_503() {
    // Nothing listens on port 1, so acquiring fails; with a tiny acquire timeout sqlx
    // reports PoolTimedOut, which must count as a timeout and map to "database busy".
    let db = Db::connect_lazy(
        "postgres://postgres@127.0.0.1:1/none",
        DbOptions {
            max_connections: 1,
            min_connections: 0,
            acquire_timeout: Duration::from_millis(200),
            idle_timeout: None,
        },
    )
    .unwrap();
    let err = db.conn().await.unwrap_err();
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    let router = sdlab_kit::router(Router::new(), &config());
    let (_, body) = get_text(&router, "/metrics").await;
    assert!(body.contains("db_pool_acquire_timeouts_total 1"), "{body}");
    assert!(body.contains("db_pool_acquire_seconds_count 1"), "{body}");
}

#[tokio::test]
async fn serve_on_a_bound_port_answers_and_stops_on_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = sdlab_kit::router(Router::new(), &config());
    let server = tokio::spawn(sdlab_kit::serve_on(listener, router, async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_request_abandoned_by_its_client_counts_as_499() {
    let app = Router::new().route("/stuck", get(std::future::pending::<&'static str>));
    let router = sdlab_kit::router(app, &config());
    let request = router
        .clone()
        .oneshot(Request::get("/stuck").body(Body::empty()).unwrap());
    // The timeout drops the request future, as hyper does when the client hangs up.
    assert!(tokio::time::timeout(Duration::from_millis(50), request)
        .await
        .is_err());
    let (_, body) = get_text(&router, "/metrics").await;
    assert!(
        body.contains(r#"http_requests_total{route="/stuck",status="499"} 1"#),
        "{body}"
    );
    assert!(body.contains("http_requests_in_flight 0"), "{body}");
}
