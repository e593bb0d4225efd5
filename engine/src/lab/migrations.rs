//! The code's `migrations/*.sql`, applied once each (recorded in `_sdlab_migrations`), like a
//! deploy's migration step, as the service's role (`database::SERVICE_ROLE`), as a deploy's
//! migrations run as the application's database user.

use std::path::PathBuf;

use sqlx::{Connection, Executor, PgConnection};

use super::database::SERVICE_ROLE;
use super::{sql, LabError};
use crate::workspace::PreparedCode;

/// Applies the code's `migrations/*.sql` not yet applied to this database, in name order,
/// each once, like a deploy's migration step. Returns the files applied. `database_url` is
/// the service's (`Database::service_url`): a migration may do what the role may.
pub async fn apply_migrations(
    database_url: &str,
    code: &PreparedCode,
) -> Result<Vec<String>, LabError> {
    let dir = code.migrations_dir();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect(),
        Err(_) => return Ok(Vec::new()),
    };
    files.sort();
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = PgConnection::connect(database_url)
        .await
        .map_err(sql("connect to apply migrations"))?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _sdlab_migrations (
             name text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(sql("create _sdlab_migrations"))?;
    let mut applied = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let done: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM _sdlab_migrations WHERE name = $1)")
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .map_err(sql("read _sdlab_migrations"))?;
        if done {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|source| LabError::Io {
            what: format!("read {}", file.display()),
            source,
        })?;
        sqlx::raw_sql(&text)
            .execute(&mut conn)
            .await
            .map_err(|e| LabError::Migration {
                file: file.clone(),
                message: migration_message(&e),
            })?;
        sqlx::query("INSERT INTO _sdlab_migrations (name) VALUES ($1)")
            .bind(&name)
            .execute(&mut conn)
            .await
            .map_err(sql("record migration"))?;
        applied.push(name);
    }
    let _ = conn.close().await;
    Ok(applied)
}

/// PostgreSQL's own message for a failed migration; a refused privilege (SQLSTATE 42501, e.g.
/// "permission denied to set parameter", "must be superuser") also says who the migration
/// ran as and what that role may do, since the same statement works in the SQL console.
fn migration_message(e: &sqlx::Error) -> String {
    let Some(db) = e.as_database_error() else {
        return e.to_string();
    };
    let message = db.message();
    if db.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE) {
        format!("{message}: {}", role_note())
    } else {
        message.to_string()
    }
}

/// SQLSTATE insufficient_privilege.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

fn role_note() -> String {
    format!(
        "migrations run as the service's role `{SERVICE_ROLE}`, which owns the scenario's \
         tables (CREATE INDEX, ALTER TABLE and new tables work) but is not a superuser \
         (server settings, ALTER SYSTEM, CREATE DATABASE and roles are not the application's \
         to change)"
    )
}
