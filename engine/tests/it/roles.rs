//! The role model on a real PostgreSQL: the services' URL is an unprivileged role that owns
//! the seeded tables, migrations run as it (an index works, ALTER SYSTEM fails naming the file
//! and the role), and it gets max_connections minus the superuser-reserved slots, no more.
//! A tiny fixture scenario (one table, ten rows) on a fresh cluster: a few seconds.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sdlab_engine::home::{LabHome, Sources};
use sdlab_engine::lab::{apply_migrations, DatabaseChoice, Lab};
use sdlab_engine::progress::Progress;
use sdlab_engine::workspace::PreparedCode;
use sqlx::{Connection, PgConnection};

const MAX_CONNECTIONS: usize = 10;
const RESERVED: usize = 3;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A sources root holding only the fixture scenario `t2-98` (database `roles`).
fn fixture_sources(root: &Path) {
    let dir = root.join("scenarios/t2-98-roles-fixture");
    write(
        &dir.join("scenario.toml"),
        &format!(
            r#"
id = "t2-98"
title = "Roles fixture"
track = 2
stage = "crawling"
concepts = ["testing"]
minutes = 1
hints = ["h"]

[topology]
instances = 1

[topology.postgres]
database = "roles"
settings = {{ max_connections = {MAX_CONNECTIONS}, superuser_reserved_connections = {RESERVED} }}

[db]
schema = "db/schema.sql"
seed = "db/seed.sql"

[[requests]]
name = "hello"
method = "GET"
path = "/"
oracle = {{ sql = "SELECT $3 = 200", hint = "Hello." }}

[profiles.check]
description = "A few requests."
timeout = "1s"
stages = [{{ duration = "3s", rate = 30 }}]
mix = {{ hello = 1 }}

[check]
profile = "check"

[[check.slo]]
metric = "error_rate"
max = 0.01
hint = "Errors."
"#
        ),
    );
    write(
        &dir.join("db/schema.sql"),
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n\
         CREATE VIEW item_names AS SELECT name FROM items;\n",
    );
    write(
        &dir.join("db/seed.sql"),
        "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 10) g;\n",
    );
}

async fn scalar(conn: &mut PgConnection, query: &str) -> String {
    sqlx::query_scalar::<_, String>(query)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_migrations_connect_as_an_owner_that_is_not_a_superuser() {
    // Under /tmp and enterable by `nobody`, who runs PostgreSQL when the tests run as root.
    let home = tempfile::Builder::new()
        .prefix("sdlab-roles-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = home.path().join("src");
    fixture_sources(&root);
    let lab = Lab::new(LabHome::at(home.path().join("home")), Sources::at(&root)).unwrap();
    let scenario = lab.scenario("t2-98").unwrap().clone();
    let db = lab.database(&scenario, &Progress::none()).await.unwrap();
    let url = db.service_url(DatabaseChoice::Learner);
    assert!(url.starts_with("postgresql://app:"), "{url}");

    let mut app = PgConnection::connect(&url).await.unwrap();
    assert_eq!(
        scalar(
            &mut app,
            "SELECT current_user || ' superuser=' || rolsuper || ' createdb=' || rolcreatedb \
             || ' createrole=' || rolcreaterole || ' replication=' || rolreplication \
             FROM pg_roles WHERE rolname = current_user"
        )
        .await,
        "app superuser=false createdb=false createrole=false replication=false"
    );
    assert_eq!(
        scalar(
            &mut app,
            "SELECT string_agg(relname || ':' || pg_get_userbyid(relowner), ' ' ORDER BY relname) \
             FROM pg_class WHERE relnamespace = 'public'::regnamespace \
             AND relkind IN ('r', 'v', 'S')"
        )
        .await,
        "item_names:app items:app items_id_seq:app"
    );
    assert_eq!(
        scalar(
            &mut app,
            "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'public'"
        )
        .await,
        "app"
    );
    app.close().await.unwrap();

    // Migrations: what an application's own migrations do works, server-wide changes do not.
    let code_dir = home.path().join("code");
    let code = PreparedCode {
        workspace_root: code_dir.clone(),
        package: "fixture".to_string(),
        dir: code_dir.clone(),
    };
    write(
        &code_dir.join("migrations/0001_index.sql"),
        "CREATE INDEX items_name_idx ON items (name);\n\
         ALTER TABLE items ADD COLUMN price int;\n\
         CREATE TABLE orders (id bigserial PRIMARY KEY, item bigint REFERENCES items);\n",
    );
    assert_eq!(
        apply_migrations(&url, &code).await.unwrap(),
        vec!["0001_index.sql"]
    );
    write(
        &code_dir.join("migrations/0002_settings.sql"),
        "ALTER SYSTEM SET max_connections = 500;\n",
    );
    let err = apply_migrations(&url, &code).await.unwrap_err().to_string();
    for part in [
        "migrations/0002_settings.sql",
        "permission denied to set parameter \"max_connections\"",
        "the service's role `app`",
        "not a superuser",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    let mut app = PgConnection::connect(&url).await.unwrap();
    assert_eq!(
        scalar(
            &mut app,
            "SELECT string_agg(name, ' ' ORDER BY name) FROM _sdlab_migrations"
        )
        .await,
        "0001_index.sql",
        "the failed migration is not recorded as applied"
    );
    let refused = sqlx::raw_sql("CREATE DATABASE roles_copy")
        .execute(&mut app)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("permission denied to create database"),
        "{refused}"
    );
    app.close().await.unwrap();
    // The template every reset and check copies from is out of the role's reach.
    let template = PgConnection::connect(&url.replace("/roles", "/roles_seed"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        template.contains("permission denied for database"),
        "{template}"
    );

    // The slots: the role gets max_connections minus the reserved ones, then PostgreSQL's
    // reserved-slots refusal; the lab's superuser still gets in.
    let mut held = Vec::new();
    let refusal = loop {
        match PgConnection::connect(&url).await {
            Ok(conn) => held.push(conn),
            Err(e) => break e.to_string(),
        }
        assert!(held.len() <= MAX_CONNECTIONS, "never refused");
    };
    assert_eq!(held.len(), MAX_CONNECTIONS - RESERVED, "{refusal}");
    assert!(
        refusal.contains("remaining connection slots are reserved"),
        "{refusal}"
    );
    let mut admin = PgConnection::connect(&db.url(DatabaseChoice::Learner))
        .await
        .expect("the superuser uses a reserved slot");
    assert_eq!(
        scalar(&mut admin, "SELECT current_user::text").await,
        "postgres"
    );
    drop(admin);
    drop(held);
    db.shutdown().await;
}
