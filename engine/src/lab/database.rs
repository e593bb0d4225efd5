//! A scenario's PostgreSQL: started by this process (and stopped with it) or attached to when
//! another lab process owns it; the learner's and the scratch databases made as file copies of
//! the seeded template, and the learner's restored from it on reset.

use std::path::PathBuf;
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

/// A scenario's database server, seeded and ready.
#[derive(Debug)]
pub struct Database {
    // Declared before `state` so that, dropped on an error path, the server stops first and
    // the run-state file naming it goes after.
    pub pg: PgLink,
    pub spec: PostgresSpec,
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

    pub fn url(&self, choice: DatabaseChoice) -> String {
        self.pg.url(&choice.name(&self.spec))
    }

    pub fn owned(&self) -> bool {
        matches!(self.pg, PgLink::Owned(_))
    }

    /// Stops the server if this process owns it.
    pub async fn shutdown(self) {
        let Database { pg, state, .. } = self;
        if let PgLink::Owned(server) = pg {
            let _ = server.stop().await;
        }
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
        if let Some(state) = self.live_state(scenario) {
            if let Some(url) = state.postgres_url {
                progress.info(format!(
                    "using the PostgreSQL of the lab already running (pid {})",
                    state.owner_pid
                ));
                return Ok(Database {
                    pg: PgLink::Attached {
                        admin_url: url,
                        postmaster_pid: state.postmaster_pid,
                    },
                    spec,
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
        let db = Database {
            pg: PgLink::Owned(Box::new(server)),
            spec,
            state: StateFile {
                path: state_path,
                owned: true,
            },
        };
        self.write_state(scenario, &db, &[], None)?;
        progress
            .step(Step::SeedRows, async {
                let note = self.seed(scenario, &db).await?;
                Ok::<_, LabError>(((), note))
            })
            .await?;
        ensure_database(&db, DatabaseChoice::Learner).await?;
        Ok(db)
    }

    /// Restores the learner's database from the seed (the learner's code is `workspace::reset_code`).
    pub async fn reset_database(&self, db: &Database) -> Result<(), LabError> {
        recreate_from_template(db, DatabaseChoice::Learner).await
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
    // the default WAL_LOG strategy writes everything through the WAL.
    admin
        .execute(
            format!("CREATE DATABASE {name} TEMPLATE {template} STRATEGY = FILE_COPY").as_str(),
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
fn replace_database(url: &str, database: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
