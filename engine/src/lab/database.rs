//! A scenario's PostgreSQL: started by this process (and stopped with it) or attached to when
//! another lab process owns it; the learner's and the scratch databases made as file copies of
//! the seeded template, and the learner's restored from it on reset; the service's role.
//!
//! The role model: the services and the learner's migrations connect as [`SERVICE_ROLE`], an
//! ordinary role (LOGIN, no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS) that
//! owns the scenario's tables and the `public` schema (see `seed::give_to_service_role`) and
//! the databases copied from the template. So it can do what an application's own migrations
//! do (CREATE INDEX, ALTER TABLE, new tables) and nothing server-wide: no ALTER SYSTEM, no
//! CREATE DATABASE, no superuser-only settings, and not the `superuser_reserved_connections`
//! slots, as on a managed database. The lab itself (seed, copies, monitoring, EXPLAIN, the SQL
//! console) keeps the superuser.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sdlab_embedded_postgres::{PgOptions, PgServer};
use sqlx::{Connection, Executor, PgConnection};

use super::{sql, DatabaseChoice, Lab, LabError};
use crate::catalog::{PostgresSpec, Scenario};
use crate::progress::{Progress, Step};

/// PostgreSQL as this process sees it: started by us, or owned by another lab process.
#[derive(Debug)]
pub enum PgLink {
    Owned(Box<PgServer>),
    Attached {
        admin_url: String,
        postmaster_pid: Option<u32>,
    },
}

impl PgLink {
    /// A URL for `database` on this server.
    pub fn url(&self, database: &str) -> String {
        match self {
            PgLink::Owned(server) => server.url(database),
            PgLink::Attached { admin_url, .. } => replace_database(admin_url, database),
        }
    }

    pub fn postmaster_pid(&self) -> Option<u32> {
        match self {
            PgLink::Owned(server) => server.postmaster_pid(),
            PgLink::Attached { postmaster_pid, .. } => *postmaster_pid,
        }
    }
}

/// The role the services and the learner's migrations connect as (see the module doc).
pub const SERVICE_ROLE: &str = "app";

/// Where a cluster keeps [`SERVICE_ROLE`]'s password, beside the superuser's `password`: a
/// lab process attaching to a running server reads it from there.
const SERVICE_PASSWORD_FILE: &str = "service-password";

/// A scenario's database server, seeded and ready.
#[derive(Debug)]
pub struct Database {
    // Declared first: dropped on an error path, the standby stops before its primary, both
    // before their CPU groups (the kernel keeps a group with members) and the run-state file
    // naming them.
    /// The streaming standby (`replicas = 1`, see `replica.rs`).
    pub replica: Option<PgLink>,
    pub pg: PgLink,
    /// Each owned server's CPU group (`[topology.postgres] cpus`); removed when dropped.
    pub(super) cgroups: Vec<crate::cgroup::InstanceCgroup>,
    pub spec: PostgresSpec,
    /// [`SERVICE_ROLE`]'s password (the server asks every TCP client for one).
    pub(super) service_password: String,
    pub(super) state: StateFile,
}

/// The run-state file of a server this process owns: removed when the server is let go,
/// however that happens (shutdown, an error after start, a panic).
#[derive(Debug)]
pub(super) struct StateFile {
    pub(super) path: PathBuf,
    owned: bool,
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Database {
    pub fn admin_url(&self) -> String {
        self.pg.url("postgres")
    }

    /// The superuser's URL for the chosen database: the lab's own tools (monitoring, EXPLAIN,
    /// the SQL console, `sdlab sql`), never the services.
    pub fn url(&self, choice: DatabaseChoice) -> String {
        self.pg.url(&choice.name(&self.spec))
    }

    /// The URL the services and the learner's migrations get: the chosen database as
    /// [`SERVICE_ROLE`].
    pub fn service_url(&self, choice: DatabaseChoice) -> String {
        replace_user(&self.url(choice), SERVICE_ROLE, &self.service_password)
    }

    pub fn owned(&self) -> bool {
        matches!(self.pg, PgLink::Owned(_))
    }

    /// The superuser's URL for the chosen database on the standby (same name as on the
    /// primary: it is a physical copy), when there is one.
    pub fn replica_url(&self, choice: DatabaseChoice) -> Option<String> {
        self.replica
            .as_ref()
            .map(|r| r.url(&choice.name(&self.spec)))
    }

    /// The standby's `postgres` database as the superuser (its settings, its lag).
    pub fn replica_admin_url(&self) -> Option<String> {
        self.replica.as_ref().map(|r| r.url("postgres"))
    }

    /// What the services get as `DATABASE_REPLICA_URL`: the chosen database on the standby as
    /// [`SERVICE_ROLE`] (the role and its password are the primary's: a physical copy).
    pub fn replica_service_url(&self, choice: DatabaseChoice) -> Option<String> {
        self.replica_url(choice)
            .map(|url| replace_user(&url, SERVICE_ROLE, &self.service_password))
    }

    /// Stops the servers if this process owns them (the standby first).
    pub async fn shutdown(self) {
        let Database {
            replica,
            pg,
            cgroups,
            state,
            ..
        } = self;
        if let Some(PgLink::Owned(server)) = replica {
            let _ = server.stop().await;
        }
        if let PgLink::Owned(server) = pg {
            let _ = server.stop().await;
        }
        drop(cgroups);
        drop(state);
    }
}

impl Lab {
    /// PostgreSQL for `scenario`, started (or attached to), seeded once and cached, with the
    /// learner's database created from the seed if it does not exist yet.
    pub async fn database(
        &self,
        scenario: &Scenario,
        progress: &Progress,
    ) -> Result<Database, LabError> {
        let spec = scenario
            .topology
            .postgres
            .clone()
            .ok_or_else(|| LabError::NoPostgres(scenario.id.clone()))?;
        let state_path = self.state_path(scenario);
        let password_file = self.home.cluster_dir(scenario).join(SERVICE_PASSWORD_FILE);
        if let Some(state) = self.live_state(scenario) {
            if let Some(url) = state.postgres_url {
                progress.info(format!(
                    "using the PostgreSQL of the lab already running (pid {})",
                    state.owner_pid
                ));
                // The owner set this password on the role when it started the server.
                let service_password = read_password(&password_file)?.ok_or_else(|| {
                    LabError::NotRunning(format!(
                        "{} is missing while another lab process (pid {}) runs this \
                         scenario's PostgreSQL: stop that process (`sdlab stop {}`) and \
                         start again",
                        password_file.display(),
                        state.owner_pid,
                        scenario.id
                    ))
                })?;
                return Ok(Database {
                    replica: state.replica_url.map(|admin_url| PgLink::Attached {
                        admin_url,
                        postmaster_pid: state.replica_pid,
                    }),
                    pg: PgLink::Attached {
                        admin_url: url,
                        postmaster_pid: state.postmaster_pid,
                    },
                    cgroups: Vec::new(),
                    spec,
                    service_password,
                    state: StateFile {
                        path: state_path,
                        owned: false,
                    },
                });
            }
        }
        let stale = progress
            .step(Step::CleanStale, async {
                let stopped = self.clean_stale(scenario)?;
                let note = if stopped.is_empty() {
                    "nothing to clean".to_string()
                } else {
                    format!("stopped {}", stopped.join(", "))
                };
                Ok::<_, LabError>((stopped, note))
            })
            .await?;
        let _ = stale;
        let server = progress
            .step(Step::InitDatabase, async {
                let starting = StartingCluster(Some(self.home.cluster_dir(scenario)));
                let server = PgServer::start(PgOptions {
                    cluster_dir: self.home.cluster_dir(scenario),
                    settings: spec.settings.clone(),
                    port: None,
                })
                .await?;
                starting.disarm();
                let note = if server.is_new_cluster() {
                    format!("new cluster on port {}", server.port())
                } else {
                    format!("cached cluster on port {}", server.port())
                };
                Ok::<_, LabError>((server, note))
            })
            .await?;
        let service_password = match read_password(&password_file)? {
            Some(password) => password,
            None => {
                let password = random_password()?;
                write_private(&password_file, &password)?;
                password
            }
        };
        let mut db = Database {
            replica: None,
            pg: PgLink::Owned(Box::new(server)),
            cgroups: Vec::new(),
            spec,
            service_password,
            state: StateFile {
                path: state_path,
                owned: true,
            },
        };
        self.write_state(scenario, &db, &[], &[], None, None)?;
        // Before the seed: the seed gives the template's tables to the role.
        ensure_service_role(&db).await?;
        progress
            .step(Step::SeedRows, async {
                let note = self.seed(scenario, &db).await?;
                Ok::<_, LabError>(((), note))
            })
            .await?;
        ensure_database(&db, DatabaseChoice::Learner).await?;
        // After the seed: the standby is a copy of the seeded cluster (seeded once, on the
        // primary; the copy is kept between starts).
        self.start_replica(scenario, &mut db, progress).await?;
        self.limit_postgres_cpu(scenario, &mut db, progress)?;
        self.write_state(scenario, &db, &[], &[], None, None)?;
        Ok(db)
    }

    /// Restores the learner's database from the seed (the learner's code is `workspace::reset_code`).
    /// The standby is a physical copy: the drop and the copy stream to it, and this returns
    /// once it has replayed them.
    pub async fn reset_database(&self, db: &Database) -> Result<(), LabError> {
        recreate_from_template(db, DatabaseChoice::Learner).await?;
        super::replica::wait_replayed(db).await
    }
}

/// A PostgreSQL start in progress: if it is abandoned before a `PgServer` guard exists (the
/// lab is interrupted mid-start and drops the future), the server pg_ctl launched is stopped
/// here instead of outliving the lab.
struct StartingCluster(Option<PathBuf>);

impl StartingCluster {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StartingCluster {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        // The postmaster writes its pid file as it starts; give a launch under way a moment.
        for _ in 0..2 {
            match sdlab_embedded_postgres::stop_stale(&dir) {
                Ok(Some(_)) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(300)),
                Err(e) => {
                    tracing::warn!("stopping the PostgreSQL of an interrupted start: {e}");
                    return;
                }
            }
        }
    }
}

/// Creates [`SERVICE_ROLE`] if the cluster has none (roles are cluster-wide: one for every
/// database of the scenario) and sets its attributes and password at every start, so a role
/// changed from the SQL console (say `ALTER ROLE app SUPERUSER`) is put back.
async fn ensure_service_role(db: &Database) -> Result<(), LabError> {
    let mut admin = PgConnection::connect(&db.admin_url())
        .await
        .map_err(sql("connect as admin"))?;
    // Letters and digits only (`read_password`, `random_password`): nothing to quote.
    let password = &db.service_password;
    let statements = format!(
        "DO $$ BEGIN
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN
                 CREATE ROLE {SERVICE_ROLE};
             END IF;
         END $$;
         ALTER ROLE {SERVICE_ROLE} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT
             NOREPLICATION NOBYPASSRLS PASSWORD '{password}';"
    );
    sqlx::raw_sql(&statements)
        .execute(&mut admin)
        .await
        .map_err(sql(format!("create the service's role {SERVICE_ROLE}")))?;
    admin.close().await.map_err(sql("disconnect"))
}

/// The service role's password stored in `path`, if there is a usable one (letters and digits:
/// it goes into a URL and an SQL literal unquoted).
fn read_password(path: &Path) -> Result<Option<String>, LabError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim();
            let usable = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric());
            Ok(usable.then(|| text.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LabError::Io {
            what: format!("read {}", path.display()),
            source,
        }),
    }
}

/// Writes `text` to `path`, readable by this user only.
fn write_private(path: &Path, text: &str) -> Result<(), LabError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| LabError::Io {
            what: format!("write {}", path.display()),
            source,
        })
}

/// 24 hex characters from /dev/urandom: URL-safe and nothing to quote in SQL.
fn random_password() -> Result<String, LabError> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| LabError::Io {
            what: "read /dev/urandom".to_string(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates the database from the template if it does not exist.
async fn ensure_database(db: &Database, choice: DatabaseChoice) -> Result<(), LabError> {
    let name = choice.name(&db.spec);
    let mut admin = PgConnection::connect(&db.admin_url())
        .await
        .map_err(sql("connect as admin"))?;
    if !database_exists(&mut admin, &name).await? {
        create_from_template(&mut admin, &name, &db.spec.template_database()).await?;
    }
    admin.close().await.map_err(sql("disconnect"))
}

pub(super) async fn recreate_from_template(
    db: &Database,
    choice: DatabaseChoice,
) -> Result<(), LabError> {
    let name = choice.name(&db.spec);
    let mut admin = PgConnection::connect(&db.admin_url())
        .await
        .map_err(sql("connect as admin"))?;
    drop_database(&mut admin, &name).await?;
    create_from_template(&mut admin, &name, &db.spec.template_database()).await?;
    admin.close().await.map_err(sql("disconnect"))
}

async fn create_from_template(
    admin: &mut PgConnection,
    name: &str,
    template: &str,
) -> Result<(), LabError> {
    // FILE_COPY copies the template's files directly: seconds for a few hundred MB, where
    // the default WAL_LOG strategy writes everything through the WAL. The copy's tables are
    // the service role's already (the template's are); owning the database as well lets the
    // learner's migrations create schemas and trusted extensions there.
    admin
        .execute(
            format!(
                "CREATE DATABASE {name} OWNER {SERVICE_ROLE} TEMPLATE {template} \
                 STRATEGY = FILE_COPY"
            )
            .as_str(),
        )
        .await
        .map_err(sql(format!("create database {name} from {template}")))?;
    Ok(())
}

pub(super) async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), LabError> {
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .map_err(sql(format!("drop database {name}")))?;
    Ok(())
}

pub(super) async fn database_exists(
    admin: &mut PgConnection,
    name: &str,
) -> Result<bool, LabError> {
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await
        .map_err(sql("list databases"))
}

/// `postgres://u:p@h:port/old?x` with the database replaced.
pub(super) fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{database}?{q}"),
        None => format!("{host}/{database}"),
    }
}

/// `postgres://u:p@h:port/db?x` with the user and password replaced.
fn replace_user(url: &str, user: &str, password: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    format!("{}{user}:{password}@{host}", &url[..scheme_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_the_user_keeps_host_database_and_options() {
        assert_eq!(
            replace_user("postgresql://postgres:pw@127.0.0.1:5555/feed", "app", "s3"),
            "postgresql://app:s3@127.0.0.1:5555/feed"
        );
        assert_eq!(
            replace_user("postgres://127.0.0.1:1/b?sslmode=disable", "app", "x"),
            "postgres://app:x@127.0.0.1:1/b?sslmode=disable"
        );
    }

    #[test]
    fn replacing_the_database_keeps_credentials_and_options() {
        assert_eq!(
            replace_database("postgresql://postgres:pw@127.0.0.1:5555/postgres", "feed"),
            "postgresql://postgres:pw@127.0.0.1:5555/feed"
        );
        assert_eq!(
            replace_database("postgres://u@127.0.0.1:1/a?sslmode=disable", "b"),
            "postgres://u@127.0.0.1:1/b?sslmode=disable"
        );
    }
}
