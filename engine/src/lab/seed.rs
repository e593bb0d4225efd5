//! The seed: the scenario's schema and seed files loaded once into a template database (with
//! `fsync` off for the bulk load, made durable after) as the superuser, its objects then given
//! to the service's role, and the fingerprint that says when a changed seed file (or a new
//! role model) needs a reseed.

use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection};

use super::database::{database_exists, drop_database, Database, PgLink, SERVICE_ROLE};
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
        let log_from = match &db.pg {
            PgLink::Owned(server) => Some(server.log_len()),
            PgLink::Attached { .. } => None,
        };
        set_fsync(&mut admin, false).await?;
        let loaded = load_seed(scenario, db, &template).await;
        let durable = async {
            set_fsync(&mut admin, true).await?;
            admin
                .execute("CHECKPOINT")
                .await
                .map_err(sql("CHECKPOINT after the seed"))?;
            admin.close().await.map_err(sql("disconnect"))
        }
        .await;
        let explain = |e| explain_server_death(e, db, log_from);
        durable.map_err(explain)?;
        if let PgLink::Owned(server) = &db.pg {
            server.sync_data_dir()?;
        }
        loaded.map_err(explain)?;
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

/// A seed statement whose connection closed under it: when the lab's own server logged a
/// PANIC or FATAL line since `log_from`, the error carries that line (the real cause, e.g. a
/// full disk) and what to do, instead of only "expected to read 5 bytes, got 0 bytes".
fn explain_server_death(error: LabError, db: &Database, log_from: Option<u64>) -> LabError {
    let (PgLink::Owned(server), Some(from)) = (&db.pg, log_from) else {
        return error;
    };
    let Some(line) = server.failure_since(from) else {
        return error;
    };
    let advice = if line.contains("No space left on device") {
        format!(
            "The disk holding {} is full: free some space (df -h shows it) and start again; \
             the seed starts over.",
            server.data_dir().display()
        )
    } else {
        "Start again: the seed starts over. If it fails the same way, the log above says why."
            .to_string()
    };
    LabError::ServerDied {
        context: error.to_string(),
        log: server.log_path(),
        line,
        advice,
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
    give_to_service_role(&mut conn, template).await?;
    conn.execute("VACUUM ANALYZE")
        .await
        .map_err(sql("VACUUM ANALYZE the seed"))?;
    conn.close().await.map_err(sql("disconnect"))
}

/// Gives what the seed created in `template` to [`SERVICE_ROLE`]: every schema but the system
/// ones (`public` included), every table, view, materialized view and foreign table (their
/// indexes and owned sequences follow), every free-standing sequence, routine and type. The
/// copies (`CREATE DATABASE ... TEMPLATE`) carry this ownership, so the learner's migrations
/// can alter and index the tables there. Objects of extensions stay the superuser's.
///
/// The template itself stays the superuser's, and PUBLIC loses CONNECT on it (a database's
/// ACL is not copied to the databases made from it): the service role cannot change the seed
/// that every reset and check starts from.
async fn give_to_service_role(conn: &mut PgConnection, template: &str) -> Result<(), LabError> {
    let role = SERVICE_ROLE;
    let statements = format!(
        r#"DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT format('ALTER %s %s OWNER TO {role}',
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                     WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                      c.oid::regclass) AS stmt
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          -- serial and identity sequences follow their table
          AND NOT EXISTS (SELECT FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype IN ('a', 'i', 'e'))
    LOOP EXECUTE r.stmt; END LOOP;
    FOR r IN
        SELECT format('ALTER SCHEMA %I OWNER TO {role}', nspname) AS stmt FROM pg_namespace
        WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\_%'
    LOOP EXECUTE r.stmt; END LOOP;
    FOR r IN
        SELECT format('ALTER ROUTINE %s OWNER TO {role}', p.oid::regprocedure) AS stmt
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
          AND NOT EXISTS (SELECT FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                            AND d.deptype = 'e')
    LOOP EXECUTE r.stmt; END LOOP;
    FOR r IN
        SELECT format('ALTER %s %s OWNER TO {role}',
                      CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                      t.oid::regtype) AS stmt
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
          -- free-standing enums, domains, ranges and composite types; not arrays, not the
          -- row types of tables (those follow the table)
          AND (t.typtype IN ('e', 'd', 'r')
               OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
          AND NOT EXISTS (SELECT FROM pg_depend d
                          WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                            AND d.deptype = 'e')
    LOOP EXECUTE r.stmt; END LOOP;
END $$;
REVOKE CONNECT ON DATABASE {template} FROM PUBLIC;"#
    );
    sqlx::raw_sql(&statements)
        .execute(&mut *conn)
        .await
        .map_err(sql(format!("give {template}'s tables to the role {role}")))?;
    Ok(())
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

/// What the seed leaves besides the data: who owns it. Part of the fingerprint, so a cluster
/// seeded by an older lab (everything the superuser's) is seeded again once, rather than
/// having its ownership fixed in place: the change then happens in one place (after a seed,
/// in the template) and every database that exists was copied from a template that had it.
/// Fixing in place would also have to reach the learner's database and the objects earlier
/// migrations created there as the superuser; a reseed recreates the learner's database from
/// the template and the next start applies their migrations again, as the role.
const ROLE_MODEL: &str = "role model 1: the seed's objects owned by the role app";

/// A stable fingerprint of what the seed depends on (FNV-1a over the SQL files, the database
/// name and [`ROLE_MODEL`]), so editing a seed reseeds and nothing else does.
fn seed_fingerprint(scenario: &Scenario) -> Result<String, LabError> {
    let mut hash = crate::freshness::Fnv::new();
    hash.feed(ROLE_MODEL.as_bytes());
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
