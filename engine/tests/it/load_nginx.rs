//! The load generator's own HTTP/1.1 client against nginx, the other server the lab's load
//! meets (t1-04 and t1-06 put it in front of the instances): every framing nginx answers with
//! (its own `return`, a proxied fixed length, a proxied stream re-chunked, no content, its
//! error page) and the connections it closes every few answers (`keepalive_requests`), in both
//! load models, with request IDs passed through to the upstream and back.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use sdlab_embedded_nginx::{Nginx, NginxOptions};
use sdlab_engine::load::{
    run_with_request_ids, Echo, LoadPlan, Model, RequestIds, RequestTemplate, RunSummary, Stage,
};
use tokio_util::sync::CancellationToken;

/// The upstream behind nginx: a 1 MB body with its length, a stream of pieces (no length, so
/// chunked), and an echo of the request ID header.
async fn upstream() -> u16 {
    let big = vec![b'b'; 1 << 20];
    let app = Router::new()
        .route("/big", get(move || std::future::ready(big.clone())))
        .route(
            "/stream",
            get(|| async {
                let pieces = (0..20u8).map(|i| Ok::<_, std::io::Error>(vec![b'a' + i; 5000]));
                Body::from_stream(futures_util::stream::iter(pieces))
            }),
        )
        .route(
            "/id",
            get(|headers: HeaderMap| async move {
                let mut answer = HeaderMap::new();
                if let Some(id) = headers.get("x-request-id") {
                    answer.insert("x-request-id", id.clone());
                }
                (answer, "id")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

fn site(upstream: u16) -> String {
    format!(
        "upstream app {{ server 127.0.0.1:{upstream}; keepalive 8; }}\n\
         server {{\n\
         \x20   listen {{{{listen}}}};\n\
         \x20   # `Connection: close` on every 7th answer of a connection.\n\
         \x20   keepalive_requests 7;\n\
         \x20   location = /fixed {{ return 200 \"fixed\\n\"; }}\n\
         \x20   location = /empty {{ return 204; }}\n\
         \x20   location = /missing {{ return 404; }}\n\
         \x20   location / {{\n\
         \x20       proxy_pass http://app;\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Connection \"\";\n\
         \x20       proxy_buffering off;\n\
         \x20   }}\n\
         }}\n"
    )
}

const PATHS: [&str; 6] = ["/fixed", "/empty", "/missing", "/big", "/stream", "/id"];

fn plan(url: &str, model: Model) -> LoadPlan {
    LoadPlan {
        targets: vec![url.to_owned()],
        stages: vec![Stage::constant(Duration::from_secs(1), 150.0)],
        mix: PATHS
            .iter()
            .map(|p| RequestTemplate::get(&p[1..], p))
            .collect(),
        timeout: Duration::from_secs(5),
        max_in_flight: 100,
        seed: 3,
        model,
        sessions: None,
    }
}

fn sent_of(summary: &RunSummary, name: &str) -> u64 {
    let (_, t) = summary
        .per_template
        .iter()
        .find(|(n, _)| n == name)
        .unwrap();
    t.sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_nginx_gives_is_read_in_both_models_and_each_request_reaches_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(NginxOptions {
        prefix: dir.path().to_path_buf(),
        site: site(upstream().await),
        site_label: "test site".into(),
        port: None,
    })
    .await
    .unwrap();
    let mut logged_before = 0;
    for model in [Model::Open, Model::Closed { users: 3 }] {
        let ids = RequestIds::new("X-Request-Id", "sdlab-nginx").unwrap();
        let summary = run_with_request_ids(
            plan(&nginx.url(), model),
            ids.clone(),
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(summary.sent >= 50, "{model:?}: {}", summary.sent);
        for path in PATHS {
            assert!(sent_of(&summary, &path[1..]) > 0, "{model:?}: no {path}");
        }
        let missing = sent_of(&summary, "missing");
        // Only the 404s failed: no broken, timed-out or refused request.
        assert_eq!(
            summary.ok + missing,
            summary.sent,
            "{model:?}: {:?}",
            summary.errors
        );
        assert_eq!(summary.errors.get("http 404"), Some(&missing), "{model:?}");
        let echoed = ids.sent().iter().filter(|t| t.echo == Echo::Same).count();
        assert_eq!(echoed as u64, sent_of(&summary, "id"), "{model:?}");
        // nginx logged each request once: none was sent twice or lost. It writes the line
        // after the last byte went out, so the last few may come a moment after the run.
        let expected = logged_before + summary.sent as usize;
        let mut logged = 0;
        for _ in 0..40 {
            let log = std::fs::read_to_string(nginx.access_log_path()).unwrap();
            logged = log.lines().count();
            if logged >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(logged, expected, "{model:?}");
        logged_before = logged;
    }
    nginx.stop().await;
}
