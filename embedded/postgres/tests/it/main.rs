//! Integration tests: real PostgreSQL servers, each in its own temp dir on a free port.

mod standby;

use sdlab_embedded_postgres::{
    find_binaries_in, stop_stale, BinarySearch, Error, PgOptions, PgServer,
};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

fn options(dir: &Path) -> PgOptions {
    PgOptions {
        cluster_dir: dir.join("cluster"),
        ..PgOptions::default()
    }
}

/// True while `pid` runs, or has exited as our child without being reaped by us. pg_ctl
/// daemonizes the postmaster, so its parent is init (or the nearest subreaper), which reaps it;
/// a zombie with another parent is not ours to reap.
fn process_exists(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    !field("State:").starts_with('Z') || field("PPid:") == std::process::id().to_string()
}

// A test helper: clippy's allow-unwrap-in-tests covers #[test] fns only.
#[allow(clippy::unwrap_used)]
async fn query_i64(server: &PgServer, sql: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&server.url("postgres"))
        .await
        .unwrap();
    let value: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    value
}

#[tokio::test]
async fn a_started_server_answers_select_1_and_leaves_nothing_running_after_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(options(dir.path())).await.unwrap();
    assert!(server.is_new_cluster());
    assert_ne!(server.port(), 5432);
    assert!(server.url("postgres").starts_with("postgresql://postgres:"));
    let pid = server.postmaster_pid().unwrap();
    assert!(process_exists(pid));

    let mut conn = sqlx::PgConnection::connect(&server.url("postgres"))
        .await
        .unwrap();
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let listen: String = sqlx::query_scalar("show listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "127.0.0.1");
    let check: String = sqlx::query_scalar("show client_connection_check_interval")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "1s");
    conn.close().await.unwrap();

    let data_dir = server.data_dir().to_path_buf();
    server.stop().await.unwrap();
    assert!(
        !process_exists(pid),
        "postmaster {pid} (or its zombie) is still there"
    );
    assert!(!data_dir.join("postmaster.pid").exists());
}

#[tokio::test]
async fn a_backend_that_died_is_explained_by_the_log_line_written_after_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(options(dir.path())).await.unwrap();
    let from = server.log_len();
    assert!(server.log_path().ends_with("start.log"));
    assert_eq!(server.failure_since(from), None, "nothing failed yet");

    // A session killed under its client: the client sees its connection close, the server's
    // log says FATAL and why.
    let mut victim = sqlx::PgConnection::connect(&server.url("postgres"))
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    let killed = query_i64(
        &server,
        &format!("select pg_terminate_backend({pid})::int::bigint"),
    )
    .await;
    assert_eq!(killed, 1);
    assert!(sqlx::query("select 1").execute(&mut victim).await.is_err());
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    let line = loop {
        if let Some(line) = server.failure_since(from) {
            break line;
        }
        assert!(Instant::now() < deadline, "no FATAL line in the log");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        line.contains("FATAL:") && line.contains("administrator command"),
        "{line}"
    );
    // Only what was logged after the offset counts.
    assert_eq!(server.failure_since(server.log_len()), None);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn dropping_the_guard_stops_and_reaps_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(options(dir.path())).await.unwrap();
    let pid = server.postmaster_pid().unwrap();
    drop(server);
    assert!(
        !process_exists(pid),
        "postmaster {pid} (or its zombie) is still there"
    );
}

#[tokio::test]
async fn a_second_start_of_the_same_cluster_is_not_new_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let first = PgServer::start(options(dir.path())).await.unwrap();
    let first_start = started.elapsed();
    let mut conn = sqlx::PgConnection::connect(&first.url("postgres"))
        .await
        .unwrap();
    sqlx::query("create table kept (id int)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("insert into kept values (1), (2), (3)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let stopped = Instant::now();
    first.stop().await.unwrap();
    let stop_time = stopped.elapsed();

    let started = Instant::now();
    let second = PgServer::start(options(dir.path())).await.unwrap();
    let second_start = started.elapsed();
    assert!(!second.is_new_cluster());
    assert_eq!(query_i64(&second, "select count(*) from kept").await, 3);
    // Printed for the curious; how long starts take is bench/startup.sh's business.
    eprintln!("timings: new cluster start {first_start:?}, stop {stop_time:?}, existing cluster start {second_start:?}");
    second.stop().await.unwrap();
}

#[tokio::test]
async fn settings_are_applied_and_can_change_on_an_existing_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.settings = BTreeMap::from([("max_connections".to_string(), "50".to_string())]);
    let server = PgServer::start(opts.clone()).await.unwrap();
    assert_eq!(
        query_i64(&server, "select current_setting('max_connections')::bigint").await,
        50
    );
    server.stop().await.unwrap();

    opts.settings
        .insert("max_connections".to_string(), "37".to_string());
    opts.settings
        .insert("application_name".to_string(), "it's a lab".to_string());
    let server = PgServer::start(opts).await.unwrap();
    assert_eq!(
        query_i64(&server, "select current_setting('max_connections')::bigint").await,
        37
    );
    let mut conn = sqlx::PgConnection::connect(&server.url("postgres"))
        .await
        .unwrap();
    let name: String =
        sqlx::query_scalar("select setting from pg_settings where name = 'application_name'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(name, "it's a lab");
    conn.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stop_stale_kills_a_server_whose_guard_was_leaked_by_a_crashed_run() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let server = PgServer::start(opts.clone()).await.unwrap();
    let pid = server.postmaster_pid().unwrap();
    std::mem::forget(server); // a crashed run: no Drop, the server keeps running
    assert!(process_exists(pid));

    assert_eq!(stop_stale(&opts.cluster_dir).unwrap(), Some(pid));
    assert!(
        !process_exists(pid),
        "postmaster {pid} (or its zombie) is still there"
    );
    assert_eq!(stop_stale(&opts.cluster_dir).unwrap(), None);
}

/// Set by `a_start_after_a_crashed_run_stops_the_leftover_server_first` in a child process.
const CRASH_INTO: &str = "SDLAB_IT_CRASH_INTO";

/// In a child process only: start a server and exit without stopping it, like a crashed lab.
#[tokio::test]
async fn helper_crashing_run_leaves_its_server_running() {
    let Some(cluster_dir) = std::env::var_os(CRASH_INTO) else {
        return;
    };
    let server = PgServer::start(PgOptions {
        cluster_dir: cluster_dir.into(),
        ..PgOptions::default()
    })
    .await
    .unwrap();
    println!("postmaster={}", server.postmaster_pid().unwrap());
    std::process::exit(0); // no Drop, no lock release: the OS drops the lock as a crash would
}

#[tokio::test]
async fn a_start_after_a_crashed_run_stops_the_leftover_server_first() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_crashing_run_leaves_its_server_running",
            "--nocapture",
        ])
        .env(CRASH_INTO, &opts.cluster_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let old_pid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("postmaster="))
        .unwrap_or_else(|| {
            panic!(
                "child did not start a server: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .parse()
        .unwrap();
    assert!(process_exists(old_pid));

    let server = PgServer::start(opts).await.unwrap();
    assert!(!process_exists(old_pid));
    assert_ne!(server.postmaster_pid(), Some(old_pid));
    assert_eq!(query_i64(&server, "select 1::bigint").await, 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_guard_on_a_cluster_in_use_is_refused_and_the_server_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(options(dir.path())).await.unwrap();
    let err = PgServer::start(options(dir.path())).await.unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert_eq!(query_i64(&server, "select 1::bigint").await, 1);
    server.stop().await.unwrap();
}

#[test]
fn stop_stale_on_a_dir_without_a_cluster_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(stop_stale(dir.path()).unwrap(), None);
}

#[test]
fn missing_binaries_give_an_actionable_error() {
    let empty = tempfile::tempdir().unwrap();
    let search = BinarySearch {
        bundled: Some(empty.path().to_path_buf()),
        system: false,
        download: false,
        cache_dir: None,
    };
    let err = find_binaries_in(&search).unwrap_err();
    assert!(matches!(err, Error::BinariesNotFound { .. }));
    let message = err.to_string();
    assert!(
        message.contains("sudo apt-get install -y postgresql"),
        "{message}"
    );
    assert!(message.contains("SDLAB_PG_BIN"), "{message}");
    assert!(
        message.contains(&empty.path().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("missing initdb, pg_ctl, postgres"),
        "{message}"
    );
}

#[test]
fn the_system_install_is_found_by_default() {
    let found = find_binaries_in(&BinarySearch {
        bundled: None,
        ..BinarySearch::from_env()
    })
    .unwrap();
    assert!(found.bin_dir().join("postgres").is_file());
}

#[test]
fn a_settings_name_that_cannot_be_passed_safely_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.settings.insert("port".to_string(), "1".to_string());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(PgServer::start(opts)).unwrap_err();
    assert!(matches!(err, Error::InvalidSetting { .. }), "{err}");
}
