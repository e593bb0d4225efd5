//! The streaming standby on real servers: it streams with its apply delay, the delay changes
//! while it runs (ALTER SYSTEM + reload on the standby), it refuses writes, and a second start
//! reuses the copy instead of copying again.

use sdlab_embedded_postgres::{PgOptions, PgServer, StandbyOptions};
use sqlx::{Connection, Executor, PgConnection};
use std::path::Path;
use std::time::{Duration, Instant};

fn standby_options(dir: &Path, delay: Duration) -> StandbyOptions {
    StandbyOptions {
        cluster_dir: dir.join("standby"),
        settings: Default::default(),
        slot: "replica1".to_string(),
        apply_delay: delay,
        fresh_copy: false,
    }
}

/// How long until `id` is visible on the standby, polling every 20 ms (at most 20 s).
#[allow(clippy::unwrap_used)]
async fn seen_after(standby: &mut PgConnection, id: i32) -> Duration {
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("select count(*) from t where id = $1")
            .bind(id)
            .fetch_one(&mut *standby)
            .await
            .unwrap();
        if n == 1 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "row {id} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_standby_streams_after_its_apply_delay_which_changes_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let primary = PgServer::start(PgOptions {
        cluster_dir: dir.path().join("primary"),
        ..PgOptions::default()
    })
    .await
    .unwrap();
    let mut p = PgConnection::connect(&primary.url("postgres"))
        .await
        .unwrap();
    p.execute("create table t (id int primary key)")
        .await
        .unwrap();

    let (standby, start) = primary
        .start_standby(standby_options(dir.path(), Duration::from_millis(1500)))
        .await
        .unwrap();
    assert!(start.copied, "the first start copies the primary");
    let mut s = PgConnection::connect(&standby.url("postgres"))
        .await
        .unwrap();
    let recovering: bool = sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(&mut s)
        .await
        .unwrap();
    assert!(recovering);

    p.execute("insert into t values (1)").await.unwrap();
    let took = seen_after(&mut s, 1).await;
    assert!(
        took >= Duration::from_millis(1300),
        "seen after {took:?}, before the 1.5 s delay"
    );

    // The delay is a reload setting: ALTER SYSTEM on the standby, then reload.
    s.execute("alter system set recovery_min_apply_delay = '0'")
        .await
        .unwrap();
    s.execute("select pg_reload_conf()").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.execute("insert into t values (2)").await.unwrap();
    let took = seen_after(&mut s, 2).await;
    assert!(
        took < Duration::from_millis(1000),
        "seen after {took:?} with no delay"
    );

    let refused = s.execute("insert into t values (3)").await.unwrap_err();
    assert!(
        refused.to_string().contains("read-only transaction"),
        "{refused}"
    );
    let state: String = sqlx::query_scalar(
        "select state from pg_stat_replication where application_name = 'replica1'",
    )
    .fetch_one(&mut p)
    .await
    .unwrap();
    assert_eq!(state, "streaming");
    s.close().await.unwrap();
    standby.stop().await.unwrap();

    // Written while the standby is down: the kept copy catches up from its slot.
    p.execute("insert into t values (4)").await.unwrap();
    let (standby, start) = primary
        .start_standby(standby_options(dir.path(), Duration::ZERO))
        .await
        .unwrap();
    assert!(!start.copied, "the second start reuses the copy");
    let mut s = PgConnection::connect(&standby.url("postgres"))
        .await
        .unwrap();
    seen_after(&mut s, 4).await;
    s.close().await.unwrap();
    standby.stop().await.unwrap();
    p.close().await.unwrap();
    primary.stop().await.unwrap();
}
