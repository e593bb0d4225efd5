//! The scenario's streaming replica (`[topology.postgres] replicas = 1`): a hot standby of the
//! primary, copied with `pg_basebackup` once and kept between starts (see
//! `PgServer::start_standby`), with `recovery_min_apply_delay` from scenario.toml and
//! changeable while it runs ([`set_replica_delay`]); PostgreSQL's CPU shares
//! (`[topology.postgres] cpus`).
//!
//! The standby belongs to the `Database`: it is stopped with the primary, recorded in the run
//! state (so a second lab process attaches to it and the stale clean-up of a crashed run stops
//! it), and a reset of the primary's database reaches it by replication.

use std::time::{Duration, Instant};

use sdlab_embedded_postgres::StandbyOptions;
use sqlx::{Connection, Executor, PgConnection};

use super::database::{Database, PgLink};
use super::{sql, Lab, LabError};
use crate::catalog::Scenario;
use crate::cgroup::{CpuLimiter, InstanceCgroup};
use crate::progress::Progress;

/// The replication slot (and `application_name`) of the standby on the primary.
pub const REPLICA_SLOT: &str = "replica1";

/// How long a started standby may take to stream from its primary before its copy is made
/// again (a kept copy that cannot follow: a slot whose WAL is gone, say).
const STREAMING_DEADLINE: Duration = Duration::from_secs(15);

impl Lab {
    /// Starts the standby when the scenario has one, streaming (checked) from its slot; with
    /// no replica, drops a slot an earlier version of the scenario left (it would keep WAL on
    /// the primary forever).
    pub(super) async fn start_replica(
        &self,
        scenario: &Scenario,
        db: &mut Database,
        progress: &Progress,
    ) -> Result<(), LabError> {
        let PgLink::Owned(primary) = &db.pg else {
            return Ok(());
        };
        if db.spec.replicas == 0 {
            let mut admin = PgConnection::connect(&db.admin_url())
                .await
                .map_err(sql("connect as admin"))?;
            sqlx::query(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = $1 AND NOT active",
            )
            .bind(REPLICA_SLOT)
            .execute(&mut admin)
            .await
            .map_err(sql("drop the replica's unused slot"))?;
            return admin.close().await.map_err(sql("disconnect"));
        }
        let mut opts = StandbyOptions {
            cluster_dir: replica_dir(self, scenario),
            settings: db.spec.settings.clone(),
            slot: REPLICA_SLOT.to_string(),
            apply_delay: db.spec.replica_apply_delay,
            fresh_copy: false,
        };
        // The standby reports its replay position every second (default 10 s), so the lag the
        // primary shows is current.
        opts.settings
            .insert("wal_receiver_status_interval".to_string(), "1s".to_string());
        // The primary keeps the rows the replica's queries still read: without it, vacuum on
        // a busy primary cancels long reads on the replica ("conflict with recovery"), errors
        // a read-replica lesson is not about.
        opts.settings
            .insert("hot_standby_feedback".to_string(), "on".to_string());
        let started = Instant::now();
        let (mut standby, mut how) = primary.start_standby(opts.clone()).await?;
        if let Err(e) = wait_streaming(&db.admin_url(), STREAMING_DEADLINE).await {
            if !how.copied {
                progress.info(format!(
                    "the kept replica did not stream ({e}); copying the primary again"
                ));
                standby.stop().await?;
                opts.fresh_copy = true;
                (standby, how) = primary.start_standby(opts).await?;
                wait_streaming(&db.admin_url(), STREAMING_DEADLINE).await?;
            } else {
                return Err(e);
            }
        }
        progress.info(format!(
            "replica (pid {}) on port {}, streaming from slot {REPLICA_SLOT}, apply delay {} ms \
             ({}, up in {:.1} s)",
            standby.postmaster_pid().unwrap_or_default(),
            standby.port(),
            db.spec.replica_apply_delay.as_millis(),
            if how.copied {
                format!(
                    "copied with pg_basebackup in {:.2} s",
                    how.copy_time.as_secs_f64()
                )
            } else {
                "kept copy restarted".to_string()
            },
            started.elapsed().as_secs_f64()
        ));
        db.replica = Some(PgLink::Owned(Box::new(standby)));
        Ok(())
    }

    /// Puts each PostgreSQL server this process owns (the postmaster and every process it has
    /// started so far; later backends inherit the group) in its own CPU group under the lab's,
    /// when the scenario gives PostgreSQL a share. Without cgroups it says so and runs unlimited
    /// (pausing a database server with signals would hold its locks: no throttle here).
    pub(super) fn limit_postgres_cpu(
        &self,
        scenario: &Scenario,
        db: &mut Database,
        progress: &Progress,
    ) -> Result<(), LabError> {
        let primary_cores = db.spec.cpus;
        // The replica's own share, else the primary's.
        let replica_cores = db.spec.replica_cpus.or(primary_cores);
        let Some(cores) = primary_cores.or(replica_cores) else {
            return Ok(());
        };
        let shares = match (primary_cores, db.replica.as_ref().and(replica_cores)) {
            (Some(p), Some(r)) if p != r => format!("{p} CPU for the primary, {r} for the replica"),
            _ => format!("{cores} CPU per server"),
        };
        let limiter = crate::cgroup::detect();
        if let CpuLimiter::Unavailable { reason } = &limiter {
            progress.info(format!(
                "PostgreSQL's CPU share ({shares}) is not enforced: {reason}"
            ));
            return Ok(());
        }
        let servers = [
            ("postgres-primary", Some(&db.pg), primary_cores),
            ("postgres-replica", db.replica.as_ref(), replica_cores),
        ];
        for (name, link, cores) in servers {
            let (Some(PgLink::Owned(server)), Some(cores)) = (link, cores) else {
                continue;
            };
            let Some(pid) = server.postmaster_pid() else {
                continue;
            };
            let group = InstanceCgroup::create_named(&limiter, &scenario.id, name, cores)?;
            group.add(pid)?;
            for member in crate::procfs::process_tree(pid) {
                // Best effort: a backend may have exited since the tree was read.
                let _ = group.add(member);
            }
            db.cgroups.push(group);
        }
        progress.info(format!("PostgreSQL gets {shares} ({})", limiter.describe()));
        Ok(())
    }
}

/// `admin_url` (a server's superuser URL, the run state's `replica_url`, say) for `database`.
pub fn database_url_on(admin_url: &str, database: &str) -> String {
    super::database::replace_database(admin_url, database)
}

/// `<cluster dir>/replica`: the standby's own cluster dir, beside the primary's data.
pub(super) fn replica_dir(lab: &Lab, scenario: &Scenario) -> std::path::PathBuf {
    lab.home.cluster_dir(scenario).join("replica")
}

/// Waits until the primary shows the standby streaming from its slot.
async fn wait_streaming(primary_admin_url: &str, deadline: Duration) -> Result<(), LabError> {
    let mut admin = PgConnection::connect(primary_admin_url)
        .await
        .map_err(sql("connect as admin"))?;
    let until = Instant::now() + deadline;
    loop {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM pg_stat_replication WHERE application_name = $1")
                .bind(REPLICA_SLOT)
                .fetch_optional(&mut admin)
                .await
                .map_err(sql("read pg_stat_replication"))?;
        if state.as_deref() == Some("streaming") {
            return admin.close().await.map_err(sql("disconnect"));
        }
        if Instant::now() >= until {
            return Err(LabError::NotRunning(format!(
                "the replica is not streaming from the primary after {deadline:?} \
                 (pg_stat_replication state {})",
                state.as_deref().unwrap_or("absent")
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the standby has replayed everything the primary has written so far (a database
/// just created or reset there, a role's password), at most its apply delay plus 30 s. Returns
/// at once without a standby.
///
/// # Errors
/// [`LabError::NotRunning`] when it does not catch up in time; SQL errors.
pub async fn wait_replayed(db: &Database) -> Result<(), LabError> {
    let Some(replica_admin) = db.replica_admin_url() else {
        return Ok(());
    };
    let mut primary = PgConnection::connect(&db.admin_url())
        .await
        .map_err(sql("connect as admin"))?;
    let target: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut primary)
        .await
        .map_err(sql("read the primary's WAL position"))?;
    primary.close().await.map_err(sql("disconnect"))?;
    let mut standby = PgConnection::connect(&replica_admin)
        .await
        .map_err(sql("connect to the replica"))?;
    let delay: i64 = sqlx::query_scalar(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'recovery_min_apply_delay'",
    )
    .fetch_one(&mut standby)
    .await
    .map_err(sql("read the replica's apply delay"))?;
    let deadline = Duration::from_millis(delay.max(0) as u64) + Duration::from_secs(30);
    let until = Instant::now() + deadline;
    loop {
        let done: Option<bool> =
            sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
                .bind(&target)
                .fetch_one(&mut standby)
                .await
                .map_err(sql("read the replica's replay position"))?;
        if done == Some(true) {
            return standby.close().await.map_err(sql("disconnect"));
        }
        if Instant::now() >= until {
            return Err(LabError::NotRunning(format!(
                "the replica has not replayed the primary's WAL up to {target} after {deadline:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Changes the standby's `recovery_min_apply_delay` while it runs (`ALTER SYSTEM` on the
/// standby, then a reload: it is a reload setting), and waits until the standby uses it.
/// `replica_admin_url` is the standby's superuser URL (`Database::replica_admin_url`, or the
/// run state's `replica_url` for a lab another process runs). The next start goes back to
/// the scenario's delay.
///
/// # Errors
/// SQL errors (the standby is down), or [`LabError::NotRunning`] when the reload does not
/// take effect within 5 s.
pub async fn set_replica_delay(replica_admin_url: &str, delay: Duration) -> Result<(), LabError> {
    let ms = delay.as_millis();
    let mut standby = PgConnection::connect(replica_admin_url)
        .await
        .map_err(sql("connect to the replica"))?;
    standby
        .execute(format!("ALTER SYSTEM SET recovery_min_apply_delay = '{ms}ms'").as_str())
        .await
        .map_err(sql("set the replica's apply delay"))?;
    standby
        .execute("SELECT pg_reload_conf()")
        .await
        .map_err(sql("reload the replica's settings"))?;
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let now: i64 = sqlx::query_scalar(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'recovery_min_apply_delay'",
        )
        .fetch_one(&mut standby)
        .await
        .map_err(sql("read the replica's apply delay"))?;
        if now == ms as i64 {
            return standby.close().await.map_err(sql("disconnect"));
        }
        if Instant::now() >= until {
            return Err(LabError::NotRunning(format!(
                "the replica still applies with a delay of {now} ms after the reload"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
