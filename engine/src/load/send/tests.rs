//! The client against real servers on loopback: an axum app (hyper's server, the one every
//! scenario service runs) in every framing, and hand-written servers for the answers axum
//! never gives (closed mid-body, garbage, a head dribbled byte by byte, no length).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[test]
fn loopback_targets_are_accepted() {
    for url in [
        "http://127.0.0.1:8080",
        "http://127.0.0.2:1/api/",
        "http://[::1]:9",
        "http://localhost:3000",
    ] {
        assert!(Target::parse(url).is_ok(), "{url}");
    }
    let target = Target::parse("http://127.0.0.1:8080/api/").unwrap();
    assert_eq!(target.path("/users/1"), "/api/users/1");
    assert_eq!(target.host_line, b"host: 127.0.0.1:8080\r\n");
    assert_eq!(Target::parse("http://[::1]:9").unwrap().host(), "::1");
}

#[test]
fn other_hosts_and_schemes_are_rejected() {
    for url in [
        "http://10.0.0.1:80",
        "http://example.com",
        "http://0.0.0.0:80",
    ] {
        assert!(
            matches!(Target::parse(url), Err(LoadError::NotLoopback { .. })),
            "{url}"
        );
    }
    assert!(matches!(
        Target::parse("https://127.0.0.1:1"),
        Err(LoadError::Target { .. })
    ));
    assert!(matches!(
        Target::parse("127.0.0.1:1"),
        Err(LoadError::Target { .. })
    ));
}

/// An axum app on a free loopback port; the task ends with the test's runtime.
async fn serve(app: axum::Router) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Target::parse(&url).unwrap()
}

/// A server that answers every connection's first request with `answer` (then does what
/// `after` says); the task ends with the test's runtime.
async fn raw_server(answer: &'static [u8], piecewise: bool, after: After) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                if piecewise {
                    for byte in answer {
                        let _ = socket.write_all(&[*byte]).await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                } else {
                    let _ = socket.write_all(answer).await;
                }
                if let After::Hold = after {
                    let _ = socket.read(&mut request).await;
                }
            });
        }
    });
    Target::parse(&url).unwrap()
}

#[derive(Clone, Copy)]
enum After {
    /// Close the connection (drop the socket).
    Close,
    /// Keep it open until the client closes it.
    Hold,
}

fn get(path: &str) -> Rendered {
    Rendered {
        method: Method::Get,
        path: path.to_owned(),
        body: None,
        auth: None,
        request_id: None,
        headers: Vec::new(),
    }
}

fn local_port(connection: &Connection) -> Option<u16> {
    connection
        .stream
        .as_ref()
        .and_then(|s| s.local_addr().ok())
        .map(|a| a.port())
}

#[tokio::test]
async fn every_framing_axum_sends_is_read_on_one_kept_connection() {
    let big = vec![b'x'; 1 << 20];
    let app = axum::Router::new()
        .route("/fixed", axum::routing::get(|| async { "hello" }))
        .route(
            "/big",
            axum::routing::get(move || {
                let big = big.clone();
                async move { big }
            }),
        )
        .route(
            "/chunked",
            axum::routing::get(|| async {
                let pieces = (0..50).map(|i| Ok::<_, std::io::Error>(vec![b'a' + (i % 26); 3000]));
                Body::from_stream(futures_util::stream::iter(pieces))
            }),
        )
        .route(
            "/empty",
            axum::routing::get(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/echo",
            axum::routing::post(|body: String| async move { (StatusCode::CREATED, body) }),
        );
    let mut connection = Connection::new(serve(app).await, Duration::from_secs(5));
    let mut ports = Vec::new();
    for round in 0..3 {
        for (path, status) in [
            ("/fixed", 200),
            ("/big", 200),
            ("/chunked", 200),
            ("/empty", 204),
            ("/missing", 404),
        ] {
            let record = connection.send(0, Instant::now(), get(path)).await;
            assert_eq!(
                record.outcome,
                Outcome::Status(status),
                "{path}, round {round}"
            );
            ports.push(local_port(&connection));
        }
        let post = Rendered {
            method: Method::Post,
            body: Some("{\"n\":1}".into()),
            ..get("/echo")
        };
        let record = connection.send(0, Instant::now(), post).await;
        assert_eq!(record.outcome, Outcome::Status(201), "round {round}");
    }
    ports.dedup();
    assert_eq!(
        ports.len(),
        1,
        "one connection for every request: {ports:?}"
    );
    assert!(ports[0].is_some());
}

#[tokio::test]
async fn a_connection_the_server_closes_is_reopened_for_the_next_request() {
    // `Connection: close` on every answer, as nginx does after `keepalive_requests`.
    let app = axum::Router::new().fallback(|| async { ([(header::CONNECTION, "close")], "ok") });
    let mut connection = Connection::new(serve(app).await, Duration::from_secs(5));
    for i in 0..3 {
        let record = connection.send(0, Instant::now(), get("/")).await;
        assert_eq!(record.outcome, Outcome::Status(200), "request {i}");
        assert!(connection.stream.is_none(), "closed after answer {i}");
    }
}

#[tokio::test]
async fn a_server_that_closes_after_answering_without_saying_so_gets_a_new_connection() {
    let target = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        false,
        After::Close,
    )
    .await;
    let mut connection = Connection::new(target, Duration::from_secs(5));
    let mut ports = Vec::new();
    for i in 0..3 {
        let record = connection.send(0, Instant::now(), get("/")).await;
        assert_eq!(record.outcome, Outcome::Status(200), "request {i}");
        ports.push(local_port(&connection));
        // Time for the server's FIN to reach the reactor, as it has between real requests.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ports.dedup();
    assert_eq!(ports.len(), 3, "a new connection each time: {ports:?}");
}

#[tokio::test]
async fn an_answer_dribbled_byte_by_byte_is_read_whole() {
    let answer =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-id: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let target = raw_server(answer, true, After::Hold).await;
    let mut connection = Connection::new(target, Duration::from_secs(5));
    let record = connection.send(0, Instant::now(), get("/")).await;
    assert_eq!(record.outcome, Outcome::Status(200));
    assert!(connection.stream.is_some(), "kept for the next request");
}

#[tokio::test]
async fn a_body_that_runs_until_the_close_is_an_answer_and_the_connection_is_not_kept() {
    let target = raw_server(b"HTTP/1.1 200 OK\r\n\r\nall of it", false, After::Close).await;
    let mut connection = Connection::new(target, Duration::from_secs(5));
    let record = connection.send(0, Instant::now(), get("/")).await;
    assert_eq!(record.outcome, Outcome::Status(200));
    assert!(connection.stream.is_none());
}

#[tokio::test]
async fn a_broken_answer_is_an_io_error() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
        b"not http at all\r\n\r\n",
        b"",
    ] {
        let target = raw_server(answer, false, After::Close).await;
        let mut connection = Connection::new(target, Duration::from_secs(5));
        let record = connection.send(0, Instant::now(), get("/")).await;
        let text = String::from_utf8_lossy(answer);
        assert_eq!(record.outcome, Outcome::Error(ErrorKind::Io), "{text}");
        assert!(record.done_at < record.deadline, "failed at once: {text}");
    }
}

#[tokio::test]
async fn a_stalled_answer_times_out_and_the_next_request_gets_a_new_connection() {
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| tokio::time::sleep(Duration::from_secs(30))),
        )
        .route("/fast", axum::routing::get(|| async { "ok" }));
    let mut connection = Connection::new(serve(app).await, Duration::from_millis(300));
    let fast = connection.send(0, Instant::now(), get("/fast")).await;
    assert_eq!(fast.outcome, Outcome::Status(200));
    let slow = connection.send(0, Instant::now(), get("/slow")).await;
    assert_eq!(slow.outcome, Outcome::Error(ErrorKind::Timeout));
    assert!(slow.done_at >= slow.deadline, "not before its deadline");
    let after = connection.send(0, Instant::now(), get("/fast")).await;
    assert_eq!(after.outcome, Outcome::Status(200));
}

#[tokio::test]
async fn a_body_that_stalls_after_the_head_is_a_timeout() {
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf";
    let target = raw_server(head, false, After::Hold).await;
    let mut connection = Connection::new(target, Duration::from_millis(200));
    let record = connection.send(0, Instant::now(), get("/")).await;
    assert_eq!(record.outcome, Outcome::Error(ErrorKind::Timeout));
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut connection = Connection::new(Target::parse(&url).unwrap(), Duration::from_secs(5));
    let record = connection.send(0, Instant::now(), get("/")).await;
    assert_eq!(record.outcome, Outcome::Error(ErrorKind::Connect));
}

#[tokio::test]
async fn the_open_models_sender_opens_a_connection_per_request_in_flight_and_reuses_them() {
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        "ok"
    });
    let sender = Sender::new(serve(app).await, Duration::from_secs(5));
    for _ in 0..2 {
        let requests: Vec<_> = (0..4)
            .map(|_| {
                let sender = sender.clone();
                tokio::spawn(async move { sender.send(0, Instant::now(), get("/")).await })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap().outcome, Outcome::Status(200));
        }
    }
    let idle = sender.idle();
    assert_eq!(idle.len(), 4, "four at once, twice: four connections");
    assert!(idle.iter().all(|c| c.stream.is_some()), "all kept open");
}
