//! `sdlab_kit::Cache` against a real redis-server: hits and misses, TTLs, deletes, a full
//! `noeviction` Redis refusing writes, and a stopped Redis failing fast.
//!
//! The server is started here with command-line options rather than through
//! `redis-server-embedded`: the kit is copied into every learner's scenario workspace,
//! where the lab's own (path) crates do not exist, so the kit cannot name one even as a
//! dev-dependency.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use sdlab_kit::{AppError, Cache, CacheError, CacheOptions, KitError};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The metrics are process-wide; one cache test at a time keeps the counted deltas exact
/// when the tests share a process (`cargo test`; nextest gives each its own).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OPTIONS: CacheOptions = CacheOptions {
    response_timeout: Duration::from_millis(500),
    connection_timeout: Duration::from_millis(500),
};

/// A redis-server in a temp dir, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(extra: &[&str]) -> Server {
        let binary = std::env::var_os("SDLAB_REDIS_BIN")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                Some(std::path::PathBuf::from("/usr/bin/redis-server")).filter(|p| p.is_file())
            })
            .unwrap_or_else(|| "redis-server".into());
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        let started = Instant::now();
        while !server.answers_ping().await {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer PING on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        server
    }

    async fn answers_ping(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut reply = [0u8; 5];
        stream.write_all(b"PING\r\n").await.is_ok()
            && stream.read_exact(&mut reply).await.is_ok()
            && &reply == b"+PONG"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of one series in the `/metrics` text (`name` or `name{labels}`), 0 when absent.
fn metric(series: &str) -> f64 {
    let body = sdlab_kit::metrics::handle().unwrap().render();
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_miss_then_set_ex_then_a_hit_moves_the_counters_and_sets_the_ttl() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(&[]).await;
    let cache = Cache::connect(&server.url(), OPTIONS).await.unwrap();
    let (hits, misses) = (metric("cache_hits_total"), metric("cache_misses_total"));
    let gets = metric(r#"cache_command_seconds_count{command="GET"}"#);

    assert_eq!(cache.get("user:1").await.unwrap(), None);
    assert_eq!(metric("cache_misses_total"), misses + 1.0);
    cache
        .set_ex("user:1", "Ada", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(cache.get("user:1").await.unwrap().as_deref(), Some("Ada"));

    assert_eq!(metric("cache_hits_total"), hits + 1.0);
    assert_eq!(metric("cache_misses_total"), misses + 1.0);
    assert_eq!(
        metric(r#"cache_command_seconds_count{command="GET"}"#),
        gets + 2.0
    );
    let ttl: i64 = cache
        .query(sdlab_kit::redis::cmd("TTL").arg("user:1"))
        .await
        .unwrap();
    assert!((1..=30).contains(&ttl), "TTL {ttl}");
    assert!(metric(r#"cache_command_seconds_count{command="TTL"}"#) >= 1.0);
}

#[tokio::test]
async fn a_ttl_that_is_not_whole_seconds_is_set_in_milliseconds() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(&[]).await;
    let cache = Cache::connect(&server.url(), OPTIONS).await.unwrap();

    cache
        .set_ex("k", "v", Duration::from_millis(1500))
        .await
        .unwrap();

    let pttl: i64 = cache
        .query(sdlab_kit::redis::cmd("PTTL").arg("k"))
        .await
        .unwrap();
    // EX 1 (a truncated 1.5 s) would show at most 1000.
    assert!((1001..=1500).contains(&pttl), "PTTL {pttl}");
}

#[tokio::test]
async fn set_keeps_the_key_forever_and_a_zero_ttl_is_refused() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(&[]).await;
    let cache = Cache::connect(&server.url(), OPTIONS).await.unwrap();

    cache.set("forever", "v").await.unwrap();
    let ttl: i64 = cache
        .query(sdlab_kit::redis::cmd("TTL").arg("forever"))
        .await
        .unwrap();
    assert_eq!(ttl, -1, "-1 is Redis's 'no expiry'");

    let err = cache.set_ex("zero", "v", Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, CacheError::InvalidTtl { .. }), "{err}");
    assert_eq!(cache.get("zero").await.unwrap(), None);
}

#[tokio::test]
async fn del_says_whether_a_key_was_removed() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(&[]).await;
    let cache = Cache::connect(&server.url(), OPTIONS).await.unwrap();
    cache
        .set_ex("k", "v", Duration::from_secs(60))
        .await
        .unwrap();

    assert!(cache.del("k").await.unwrap());
    assert!(!cache.del("k").await.unwrap());
    assert_eq!(cache.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn a_full_noeviction_redis_refuses_writes_as_oom_counted_and_answered_503() {
    let _serial = SERIAL.lock().await;
    let server = Server::start(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]).await;
    let cache = Cache::connect(&server.url(), OPTIONS).await.unwrap();
    let (oom, other) = (
        metric(r#"cache_errors_total{kind="oom"}"#),
        metric(r#"cache_errors_total{kind="other"}"#),
    );
    let value = "x".repeat(64 * 1024);

    let mut refused = None;
    for i in 0..64 {
        if let Err(err) = cache
            .set_ex(&format!("big:{i}"), &value, Duration::from_secs(60))
            .await
        {
            refused = Some(err);
            break;
        }
    }

    let err = refused.expect("4 MB of writes fit in a 1 MB noeviction Redis");
    assert!(err.is_oom(), "{err}");
    assert_eq!(err.kind(), "oom");
    assert_eq!(metric(r#"cache_errors_total{kind="oom"}"#), oom + 1.0);
    assert_eq!(metric(r#"cache_errors_total{kind="other"}"#), other);
    // Reads still work on a full noeviction Redis: only writes are refused.
    assert!(cache.get("big:0").await.is_ok());
    let response = AppError::from(err).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_stopped_redis_gives_an_error_within_the_response_timeout() {
    let _serial = SERIAL.lock().await;
    let mut server = Server::start(&[]).await;
    let cache = Cache::connect(&server.url(), OPTIONS).await.unwrap();
    cache.set("k", "v").await.unwrap();
    let errors: f64 = ["timeout", "io"]
        .iter()
        .map(|kind| metric(&format!(r#"cache_errors_total{{kind="{kind}"}}"#)))
        .sum();

    server.stop();

    // The first command finds the connection lost; the next ones wait on the reconnect.
    for _ in 0..3 {
        let started = Instant::now();
        let err = cache.get("k").await.unwrap_err();
        let took = started.elapsed();
        assert!(
            took < OPTIONS.response_timeout + Duration::from_millis(200),
            "{err} took {took:?}"
        );
        assert!(matches!(err.kind(), "timeout" | "io"), "{err}");
    }
    let now: f64 = ["timeout", "io"]
        .iter()
        .map(|kind| metric(&format!(r#"cache_errors_total{{kind="{kind}"}}"#)))
        .sum();
    assert_eq!(now, errors + 3.0);
}

#[tokio::test]
async fn connecting_to_no_redis_fails_with_the_url_and_no_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:secret@127.0.0.1:{port}");

    let err = Cache::connect(&url, OPTIONS).await.unwrap_err();

    assert!(matches!(err, KitError::CacheConnect { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("redis://:***@127.0.0.1:{port}")),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}
