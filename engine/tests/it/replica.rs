//! The streaming replica on real servers, through the lab: a fixture scenario with
//! `replicas = 1` (one table, ten rows). The replica serves the seeded rows to the service's
//! role and refuses writes; a row written on the primary arrives after the apply delay and not
//! before; the delay changes while it runs; the lag is sampled; a reset of the primary's
//! database (and the learner's Reset) reaches the replica; the API changes the delay and runs
//! SQL there; the collector samples its lag; a
//! second lab process attaches to it; a second start reuses the copy; the stale clean-up after a crash stops it.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdlab_engine::home::{LabHome, Sources};
use sdlab_engine::lab::{set_replica_delay, DatabaseChoice, Lab};
use sdlab_engine::progress::{Event, Progress};
use sqlx::{Connection, Executor, PgConnection};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A sources root holding only the fixture scenario `t2-97` (database `reads`).
fn fixture_sources(root: &Path) {
    let dir = root.join("scenarios/t2-97-replica-fixture");
    write(
        &dir.join("scenario.toml"),
        r#"
id = "t2-97"
title = "Replica fixture"
track = 2
stage = "crawling"
concepts = ["testing"]
minutes = 1
hints = ["h"]

[topology]
instances = 1

[topology.postgres]
database = "reads"
replicas = 1
replica_apply_delay = "1s"
cpus = 1.5
settings = { max_connections = 20 }

[db]
schema = "db/schema.sql"
seed = "db/seed.sql"

[[requests]]
name = "hello"
method = "GET"
path = "/"
oracle = { sql = "SELECT $3 = 200", hint = "Hello." }

[profiles.check]
description = "A few requests."
timeout = "1s"
stages = [{ duration = "3s", rate = 30 }]
mix = { hello = 1 }

[check]
profile = "check"

[[check.slo]]
metric = "error_rate"
max = 0.01
hint = "Errors."
"#,
    );
    write(
        &dir.join("db/schema.sql"),
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n",
    );
    write(
        &dir.join("db/seed.sql"),
        "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 10) g;\n",
    );
}

async fn count(conn: &mut PgConnection, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM items WHERE name = $1")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

/// How long until the row named `name` shows on the replica (polled every 20 ms, at most 20 s).
async fn arrives_after(replica: &mut PgConnection, name: &str) -> Duration {
    let started = Instant::now();
    while count(replica, name).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// What the lab said along the way (`Progress` info lines).
fn recording() -> (Progress, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let progress = Progress::new(move |event| {
        if let Event::Info(text) = event {
            sink.lock().unwrap().push(text);
        }
    });
    (progress, lines)
}

const API_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const API_PORT: u16 = 45124;

/// A JSON POST through the API's router as the lab's page sends it (Host, token).
async fn api_post(app: &axum::Router, uri: &str, body: &str) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("host", format!("127.0.0.1:{API_PORT}"))
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_streams_after_its_delay_changes_it_at_runtime_follows_a_reset_and_is_cleaned_after_a_crash(
) {
    // Under /tmp and enterable by `nobody`, who runs PostgreSQL when the tests run as root.
    let home = tempfile::Builder::new()
        .prefix("sdlab-replica-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = home.path().join("src");
    fixture_sources(&root);
    let lab = Lab::new(LabHome::at(home.path().join("home")), Sources::at(&root)).unwrap();
    let scenario = lab.scenario("t2-97").unwrap().clone();
    let (progress, said) = recording();
    let db = lab.database(&scenario, &progress).await.unwrap();
    assert!(
        said.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("copied with pg_basebackup")),
        "{:?}",
        said.lock().unwrap()
    );

    // Each server in its own CPU group (when this machine has cgroups), backends included.
    let cgroup_of = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let primary_pid = db.pg.postmaster_pid().unwrap();
    let standby_pid = db.replica.as_ref().unwrap().postmaster_pid().unwrap();
    let limited = !matches!(
        sdlab_engine::cgroup::detect(),
        sdlab_engine::cgroup::CpuLimiter::Unavailable { .. }
    );
    eprintln!("PostgreSQL CPU groups enforced: {limited}");
    if limited {
        assert!(
            cgroup_of(primary_pid).contains("-postgres-primary"),
            "{}",
            cgroup_of(primary_pid)
        );
        assert!(
            cgroup_of(standby_pid).contains("-postgres-replica"),
            "{}",
            cgroup_of(standby_pid)
        );
        let mut conn = PgConnection::connect(&db.admin_url()).await.unwrap();
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(
            cgroup_of(backend as u32).contains("-postgres-primary"),
            "a backend forked later is in its server's group"
        );
        conn.close().await.unwrap();
    } else {
        assert!(
            said.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("is not enforced")),
            "{:?}",
            said.lock().unwrap()
        );
    }

    // What a service gets as DATABASE_REPLICA_URL: its own role, the same database, the
    // replica's port; the seeded rows are there and writes are refused.
    let primary_url = db.service_url(DatabaseChoice::Learner);
    let replica_url = db.replica_service_url(DatabaseChoice::Learner).unwrap();
    assert!(
        replica_url.starts_with("postgresql://app:"),
        "{replica_url}"
    );
    assert!(replica_url.ends_with("/reads"), "{replica_url}");
    assert_ne!(replica_url, primary_url);
    let mut primary = PgConnection::connect(&primary_url).await.unwrap();
    let mut replica = PgConnection::connect(&replica_url).await.unwrap();
    let seeded: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&mut replica)
        .await
        .unwrap();
    assert_eq!(seeded, 10);
    let refused = replica
        .execute("INSERT INTO items (name) VALUES ('nope')")
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("read-only transaction"), "{refused}");

    // Written on the primary: not on the replica before the 1 s delay, there after it.
    primary
        .execute("INSERT INTO items (name) VALUES ('late')")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&mut replica, "late").await,
        0,
        "applied before the delay"
    );
    let took = arrives_after(&mut replica, "late").await;
    assert!(
        took >= Duration::from_millis(500),
        "arrived {took:?} after the check at 300 ms"
    );

    // The lag while a write waits out a 2 s delay, sampled the way the collector does.
    let admin = db.admin_url();
    let replica_admin = db.replica_admin_url().unwrap();
    set_replica_delay(&replica_admin, Duration::from_secs(2))
        .await
        .unwrap();
    primary
        .execute("INSERT INTO items (name) VALUES ('waiting')")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let lagging = sdlab_engine::metrics::replica_status(&admin, &replica_admin)
        .await
        .unwrap();
    assert_eq!(lagging.state, "streaming");
    assert_eq!(lagging.apply_delay_ms, Some(2000));
    assert!(lagging.lag_bytes.unwrap() > 0, "{lagging:?}");
    assert!(lagging.replay_lag_seconds.unwrap() > 0.0, "{lagging:?}");
    arrives_after(&mut replica, "waiting").await;

    // The delay changed while it runs: no delay, the next row arrives at once.
    set_replica_delay(&replica_admin, Duration::ZERO)
        .await
        .unwrap();
    primary
        .execute("INSERT INTO items (name) VALUES ('quick')")
        .await
        .unwrap();
    let took = arrives_after(&mut replica, "quick").await;
    assert!(
        took < Duration::from_millis(700),
        "arrived after {took:?} with no delay"
    );
    let caught_up = sdlab_engine::metrics::replica_status(&admin, &replica_admin)
        .await
        .unwrap();
    assert_eq!(caught_up.apply_delay_ms, Some(0));
    primary.close().await.unwrap();
    replica.close().await.unwrap();

    // The API, for a lab another process runs (here: this test's, named by the run state):
    // the delay changes, SQL runs on the replica, and a write there shows the standby's refusal.
    let app = sdlab_engine::api::router(
        sdlab_engine::api::ApiState::new(lab.clone(), API_TOKEN, API_PORT).unwrap(),
    );
    let (status, body) = api_post(
        &app,
        "/api/scenarios/t2-97/replica",
        r#"{"apply_delay_ms": 1000}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apply_delay_ms"], 1000);
    assert_eq!(body["state"], "streaming");
    let (status, body) = api_post(
        &app,
        "/api/scenarios/t2-97/sql",
        r#"{"query": "select count(*) as n from items where name = 'quick'", "replica": true}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("\"1\""), "{body}");
    let (status, body) = api_post(
        &app,
        "/api/scenarios/t2-97/sql",
        r#"{"query": "insert into items (name) values ('x')", "write": true, "replica": true}"#,
    )
    .await;
    assert_ne!(status, 200);
    assert!(body.to_string().contains("read-only transaction"), "{body}");

    // A reset of the learner's database reaches the replica: the physical copy replays it.
    lab.reset_database(&db).await.unwrap();
    let mut replica = PgConnection::connect(&replica_url).await.unwrap();
    let after_reset: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&mut replica)
        .await
        .unwrap();
    assert_eq!(after_reset, 10, "the replica shows the reset database");
    replica.close().await.unwrap();

    // A second lab process on the scenario attaches to this replica (the run state names it).
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("home/run/t2-97.json")).unwrap())
            .unwrap();
    let replica_pid = state["replica_pid"].as_u64().unwrap() as u32;
    assert_eq!(state["replica_url"].as_str(), Some(replica_admin.as_str()));
    let attached = lab.database(&scenario, &Progress::none()).await.unwrap();
    assert!(!attached.owned());
    assert_eq!(
        attached.replica_service_url(DatabaseChoice::Learner),
        Some(replica_url.clone())
    );
    attached.shutdown().await;
    assert!(
        alive(replica_pid),
        "an attached lab does not stop the replica"
    );

    // The collector samples the lag once a second, with the replica's own CPU.
    let postmaster = db.pg.postmaster_pid();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let collector = tokio::spawn(sdlab_engine::metrics::collect(
        sdlab_engine::metrics::Targets {
            services: Vec::new(),
            postgres: Some((admin.clone(), "reads".to_string(), postmaster)),
            redis: None,
            replica: Some((replica_admin.clone(), Some(replica_pid))),
        },
        tx,
        cancel.clone(),
    ));
    let mut replica_samples = Vec::new();
    while replica_samples.len() < 2 {
        let sample = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        replica_samples.push(sample.replica.expect("a replica sample every second"));
    }
    cancel.cancel();
    collector.await.unwrap();
    let last = replica_samples.last().unwrap();
    assert_eq!(last.state, "streaming");
    assert_eq!(last.apply_delay_ms, Some(1000));
    assert!(last.lag_bytes.is_some() && last.cpu.is_some(), "{last:?}");

    // A row the learner's reset must take away, on both servers.
    let mut primary = PgConnection::connect(&primary_url).await.unwrap();
    primary
        .execute("INSERT INTO items (name) VALUES ('learner row')")
        .await
        .unwrap();
    primary.close().await.unwrap();
    sdlab_engine::lab::wait_replayed(&db).await.unwrap();
    db.shutdown().await;
    assert!(!alive(replica_pid), "the replica stops with the lab");

    // The learner's Reset (database), with the lab stopped: it starts both servers, resets,
    // and the replica replays the reset before they stop.
    sdlab_engine::learner::reset(
        &lab,
        &scenario,
        sdlab_engine::learner::ResetParts {
            code: false,
            database: true,
        },
        &Progress::none(),
    )
    .await
    .unwrap();

    // A second start restarts the kept copy instead of copying again, with the scenario's delay.
    let (progress, said) = recording();
    let db = lab.database(&scenario, &progress).await.unwrap();
    assert!(
        said.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("kept copy restarted")),
        "{:?}",
        said.lock().unwrap()
    );
    let status =
        sdlab_engine::metrics::replica_status(&db.admin_url(), &db.replica_admin_url().unwrap())
            .await
            .unwrap();
    assert_eq!(
        status.apply_delay_ms,
        Some(1000),
        "back to the scenario's delay"
    );
    // A new start, a new port.
    let replica_url = db.replica_service_url(DatabaseChoice::Learner).unwrap();
    let mut replica = PgConnection::connect(&replica_url).await.unwrap();
    assert_eq!(
        count(&mut replica, "learner row").await,
        0,
        "Reset reached the replica"
    );
    replica.close().await.unwrap();

    // A crash: the lab process is gone (its run state names a dead owner) and its servers run
    // on; the next clean-up stops the replica and the primary.
    let state_path = home.path().join("home/run/t2-97.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let replica_pid = state["replica_pid"].as_u64().unwrap() as u32;
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    state["owner_pid"] = dead.into();
    std::mem::forget(db);
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let stopped = lab.clean_stale(&scenario).unwrap();
    assert!(stopped.iter().any(|s| s.contains("replica")), "{stopped:?}");
    assert!(!alive(replica_pid), "the crashed run's replica is stopped");
}
