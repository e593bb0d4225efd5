//! The seed: the scenario's schema and seed files loaded once into a template database (with
//! `fsync` off for the bulk load, made durable after), and the fingerprint that says when a
//! changed seed file needs a reseed.

use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection};

use super::database::{database_exists, drop_database, Database, PgLink};
use super::{sql, DatabaseChoice, Lab, LabError};
use crate::catalog::Scenario;

impl Lab {
    /// Seeds the template database once; returns a note for the progress line.
    pub(super) async fn seed(
        &self,
        scenario: &Scenario,
        db: &Database,
    ) -> Result<String, LabError> {
        let template = db.spec.template_database();
        let marker = self.home.cluster_dir(scenario).join("seeded");
        let fingerprint = seed_fingerprint(scenario)?;
        let mut admin = PgConnection::connect(&db.admin_url())
            .await
            .map_err(sql("connect as admin"))?;
        let exists = database_exists(&mut admin, &template).await?;
        if exists && std::fs::read_to_string(&marker).ok().as_deref() == Some(fingerprint.as_str())
        {
            return Ok("cached".to_string());
        }
        let started = Instant::now();
        // The seed changed (or a run died mid-seed): rebuild the template and the databases
        // made from it, so before and after runs see the same data.
        for name in [
            template.clone(),
            db.spec.database.clone(),
            DatabaseChoice::Scratch.name(&db.spec),
        ] {
            drop_database(&mut admin, &name).await?;
        }
        let _ = std::fs::remove_file(&marker);
        admin
            .execute(format!("CREATE DATABASE {template}").as_str())
            .await
            .map_err(sql(format!("create database {template}")))?;
        // A seed is a bulk load into a database nobody uses yet: it runs with `fsync = off`
        // (not waiting on the disk for every WAL segment) and made durable in one go after,
        // whether it succeeded or not: fsync back on, CHECKPOINT, every data file synced.
        set_fsync(&mut admin, false).await?;
        let loaded = load_seed(scenario, db, &template).await;
        set_fsync(&mut admin, true).await?;
        admin
            .execute("CHECKPOINT")
            .await
            .map_err(sql("CHECKPOINT after the seed"))?;
        admin.close().await.map_err(sql("disconnect"))?;
        if let PgLink::Owned(server) = &db.pg {
            server.sync_data_dir()?;
        }
        loaded?;
        std::fs::write(&marker, &fingerprint).map_err(|source| LabError::Io {
            what: format!("write {}", marker.display()),
            source,
        })?;
        Ok(format!(
            "seeded in {:.1} s",
            started.elapsed().as_secs_f64()
        ))
    }
}

/// Runs the scenario's schema and seed files into `template`, then VACUUM ANALYZE, in one
/// session with room to sort and build indexes in memory.
async fn load_seed(scenario: &Scenario, db: &Database, template: &str) -> Result<(), LabError> {
    let mut conn = PgConnection::connect(&db.pg.url(template))
        .await
        .map_err(sql(format!("connect to {template}")))?;
    conn.execute(
        "SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '256MB'",
    )
    .await
    .map_err(sql("set the seed session's memory"))?;
    if let Some(seed) = &scenario.db {
        for file in std::iter::once(&seed.schema).chain(seed.seed.as_ref()) {
            let text = std::fs::read_to_string(file).map_err(|source| LabError::Io {
                what: format!("read {}", file.display()),
                source,
            })?;
            sqlx::raw_sql(&text)
                .execute(&mut conn)
                .await
                .map_err(sql(format!("run {}", file.display())))?;
        }
    }
    conn.execute("VACUUM ANALYZE")
        .await
        .map_err(sql("VACUUM ANALYZE the seed"))?;
    conn.close().await.map_err(sql("disconnect"))
}

/// Turns the server's `fsync` off or back on (`ALTER SYSTEM` + reload: no restart). A run that
/// dies with it off leaves no seed marker, so the next start seeds again and turns it back on.
async fn set_fsync(admin: &mut PgConnection, on: bool) -> Result<(), LabError> {
    let change = if on {
        "ALTER SYSTEM RESET fsync"
    } else {
        "ALTER SYSTEM SET fsync = off"
    };
    admin.execute(change).await.map_err(sql(change))?;
    admin
        .execute("SELECT pg_reload_conf()")
        .await
        .map_err(sql("reload the configuration"))?;
    Ok(())
}

/// A stable fingerprint of what the seed depends on (FNV-1a over the SQL files and the
/// database name), so editing a seed reseeds and nothing else does.
fn seed_fingerprint(scenario: &Scenario) -> Result<String, LabError> {
    let mut hash = crate::freshness::Fnv::new();
    if let Some(pg) = &scenario.topology.postgres {
        hash.feed(pg.database.as_bytes());
    }
    if let Some(seed) = &scenario.db {
        for file in std::iter::once(&seed.schema).chain(seed.seed.as_ref()) {
            let bytes = std::fs::read(file).map_err(|source| LabError::Io {
                what: format!("read {}", file.display()),
                source,
            })?;
            hash.feed(&bytes);
        }
    }
    Ok(hash.hex())
}
