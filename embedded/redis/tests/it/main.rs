//! Integration tests: real redis-server processes, each in its own temp dir on a free port.
// The helpers below are test code too: a failed step should stop the test where it failed.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use redis_server_embedded::{find_binary_in, stop_stale, Error, Redis, RedisOptions, Reply};

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with(['Z', 'X']))
    })
}

fn wait_gone(pids: &[u32], within: Duration) -> bool {
    let started = Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        if started.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// One PING over a plain blocking connection (TCP or the unix socket), the reply's first line.
fn ping<S: std::io::Read + std::io::Write>(mut stream: S) -> String {
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
}

/// SETs 100 KB values under new keys until one is refused; the refusal, if any, and the count.
async fn fill(redis: &Redis, keys: usize) -> (Option<String>, usize) {
    let value = "x".repeat(100 * 1024);
    for i in 0..keys {
        let reply = redis
            .command(&["SET", &format!("key:{i}"), &value])
            .await
            .unwrap();
        if reply.is_error() {
            return (reply.text(), i);
        }
        assert_eq!(reply, Reply::Simple("OK".into()));
    }
    (None, keys)
}

fn number(info: &std::collections::BTreeMap<String, String>, key: &str) -> u64 {
    info.get(key)
        .unwrap_or_else(|| panic!("INFO has no {key}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_started_redis_answers_ping_on_loopback_and_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    let tcp = std::net::TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    assert_eq!(ping(tcp), "+PONG");
    let socket = redis.socket_path().expect("a short dir has a socket");
    assert!(socket.starts_with(dir.path()));
    assert_eq!(
        ping(std::os::unix::net::UnixStream::connect(socket).unwrap()),
        "+PONG"
    );
    let pid_file = std::fs::read_to_string(dir.path().join("redis.pid")).unwrap();
    assert_eq!(pid_file.trim(), redis.pid().to_string());
    let info = redis.info().await.unwrap();
    assert_eq!(number(&info, "tcp_port"), u64::from(redis.port()));
    assert_eq!(number(&info, "maxmemory"), 0, "no limit unless asked");
    assert!(number(&info, "used_memory") > 0);
    assert_eq!(info.get("aof_enabled").map(String::as_str), Some("0"));
    assert!(
        !dir.path().join("dump.rdb").exists() && !dir.path().join("appendonlydir").exists(),
        "nothing persisted"
    );
    assert!(std::fs::read_to_string(redis.log_path())
        .unwrap()
        .contains("Ready to accept connections"));
}

#[tokio::test]
async fn maxmemory_with_noeviction_refuses_writes_with_oom() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(
        RedisOptions::new(dir.path())
            .maxmemory(4 << 20)
            .policy("noeviction"),
    )
    .await
    .unwrap();
    let info = redis.info().await.unwrap();
    assert_eq!(number(&info, "maxmemory"), 4 << 20);
    assert_eq!(info["maxmemory_policy"], "noeviction");
    let (refused, written) = fill(&redis, 100).await;
    let refused = refused.expect("10 MB of writes into 4 MB are refused");
    assert!(refused.starts_with("OOM "), "{refused}");
    assert!(
        written > 5,
        "writes succeed until memory is full: {written}"
    );
    let info = redis.info().await.unwrap();
    assert_eq!(number(&info, "evicted_keys"), 0);
    // Error statistics came with Redis 6.2 (Ubuntu 22.04 ships 6.0).
    let version: Vec<u32> = info["redis_version"]
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    if version[..2] >= [6, 2][..] {
        assert!(
            info.get("errorstat_OOM")
                .is_some_and(|v| v.starts_with("count=")),
            "INFO counts the rejected writes: {info:?}"
        );
    }
}

#[tokio::test]
async fn maxmemory_with_allkeys_lru_evicts_instead_of_refusing() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(
        RedisOptions::new(dir.path())
            .maxmemory(4 << 20)
            .policy("allkeys-lru"),
    )
    .await
    .unwrap();
    let (refused, written) = fill(&redis, 100).await;
    assert_eq!(refused, None, "every write is accepted");
    assert_eq!(written, 100);
    let info = redis.info().await.unwrap();
    assert!(number(&info, "evicted_keys") > 0, "{info:?}");
    assert!(number(&info, "used_memory") <= 5 << 20, "{info:?}");
    let Reply::Integer(kept) = redis.command(&["DBSIZE"]).await.unwrap() else {
        panic!("DBSIZE is a number");
    };
    assert!(kept < 100, "evicted keys are gone: {kept} kept");
}

#[tokio::test]
async fn an_unknown_policy_is_refused_before_redis_runs() {
    let dir = tempfile::tempdir().unwrap();
    let err = Redis::start(RedisOptions::new(dir.path()).policy("lru"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadPolicy { .. }), "{err}");
    assert!(
        !dir.path().join("redis.pid").exists(),
        "nothing was started"
    );
}

#[tokio::test]
async fn a_taken_port_is_an_error_with_redis_log() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Redis::start(RedisOptions::new(dir.path()).port(port))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Exited { .. }), "{text}");
    assert!(text.contains("Address already in use"), "{text}");
    // Without a port of its own choosing the lab picks a free one.
    let redis = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    assert_ne!(redis.port(), port);
}

#[test]
fn a_missing_redis_server_says_how_to_install_it() {
    let err = find_binary_in(
        Some("/nonexistent".into()),
        Path::new("/usr/bin/redis-server"),
        None,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("SDLAB_REDIS_BIN=/nonexistent"), "{text}");
    assert!(
        text.contains("sudo apt-get install -y redis-server"),
        "{text}"
    );
    let err = find_binary_in(
        None,
        Path::new("/nonexistent/redis-server"),
        Some("/nonexistent".into()),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("sudo apt-get install -y redis-server"),
        "{err}"
    );
}

#[tokio::test]
async fn dropping_the_guard_leaves_no_process_and_no_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    let pid = redis.pid();
    assert!(alive(pid));
    drop(redis);
    assert!(!alive(pid), "stopped before drop returns");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "and reaped");
    assert!(!dir.path().join("redis.pid").exists());
    let redis = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    let pid = redis.pid();
    redis.stop().await;
    assert!(wait_gone(&[pid], Duration::from_secs(5)));
}

#[tokio::test]
async fn a_redis_left_by_a_crashed_run_is_stopped_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let old = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    let (pid, port) = (old.pid(), old.port());
    // A crash: the guard never runs; the server keeps running and serving.
    std::mem::forget(old);
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert_eq!(ping(tcp), "+PONG");
    let new = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    assert!(!alive(pid), "the stale server was stopped");
    assert_ne!(new.pid(), pid);
    assert_eq!(
        new.command(&["PING"]).await.unwrap(),
        Reply::Simple("PONG".into())
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("redis.pid"))
            .unwrap()
            .trim(),
        new.pid().to_string(),
        "the pid file names the new server"
    );
}

#[tokio::test]
async fn a_stale_server_without_a_pid_file_is_found_by_its_dir() {
    let dir = tempfile::tempdir().unwrap();
    let old = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    let pid = old.pid();
    std::mem::forget(old);
    std::fs::remove_file(dir.path().join("redis.pid")).unwrap();
    let stopped = stop_stale(dir.path()).unwrap();
    assert_eq!(stopped, vec![pid]);
    assert!(!alive(pid));
}

#[tokio::test]
async fn a_pid_file_naming_another_process_does_not_kill_it() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    // Another lab's Redis, in another dir: not ours to stop either.
    let other = Redis::start(RedisOptions::new(other_dir.path()))
        .await
        .unwrap();
    for pid in [sleeper.id(), other.pid()] {
        std::fs::write(dir.path().join("redis.pid"), pid.to_string()).unwrap();
        assert_eq!(stop_stale(dir.path()).unwrap(), Vec::<u32>::new());
        assert!(alive(pid), "pid {pid} was not that Redis");
    }
    let redis = Redis::start(RedisOptions::new(dir.path())).await.unwrap();
    assert!(alive(sleeper.id()) && alive(other.pid()));
    drop(redis);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

/// Run as a child by the test below: starts Redis, writes its pid, waits to be killed.
#[tokio::test]
async fn child_lab_that_starts_redis_and_waits() {
    let Ok(dir) = std::env::var("SDLAB_REDIS_TEST_CHILD") else {
        return;
    };
    let redis = Redis::start(RedisOptions::new(&dir)).await.unwrap();
    std::fs::write(Path::new(&dir).join("pid.txt"), redis.pid().to_string()).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[test]
fn redis_dies_when_the_lab_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let redis_dir = dir.path().join("redis");
    let mut lab = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_lab_that_starts_redis_and_waits",
            "--nocapture",
        ])
        .env("SDLAB_REDIS_TEST_CHILD", &redis_dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = redis_dir.join("pid.txt");
    let started = Instant::now();
    while !pid_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the child lab never started Redis"
        );
        assert!(
            lab.try_wait().unwrap().is_none(),
            "the child lab exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    lab.kill().unwrap(); // SIGKILL: no destructor runs in the lab.
    lab.wait().unwrap();
    assert!(
        wait_gone(&[pid], Duration::from_secs(10)),
        "redis-server outlived the lab: {pid}"
    );
}
