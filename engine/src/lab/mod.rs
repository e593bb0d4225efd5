//! The lab: where its data lives (`LabHome`), where its sources are (`Sources`), its catalog,
//! and what bringing a scenario up is given (`UpOptions`, `DatabaseChoice`) or fails with
//! (`LabError`). The jobs are one file each: `up` (the start orchestration), `prebuild`
//! (compiling a service ahead of its first start), `database`
//! (PostgreSQL started or attached to, template copies), `seed` (the seed, loaded once),
//! `migrations`, `running` (what a start leaves running, and its shutdown), `workers` (the
//! worker role, and restarting a crashed process), `stale` (cleaning
//! up after a crashed run, `stop`).
//!
//! A running lab is a `Running`: dropping it stops the services it started and the
//! PostgreSQL server it owns. A second lab process on the same scenario (say `sdlab check`
//! while `sdlab start` runs) attaches to the PostgreSQL the first one owns instead of
//! starting another on the same data dir.

mod database;
mod migrations;
mod prebuild;
mod replica;
mod running;
mod seed;
mod stale;
mod up;
mod workers;

use std::path::PathBuf;

use crate::catalog::{Catalog, CatalogError, PostgresSpec, Scenario};
use crate::home::{LabHome, Sources};
use crate::process::{self, RunState, ServiceProcess, ServiceState};
use crate::progress::Progress;
use crate::workspace::{self, CodeSource};

pub use database::{Database, PgLink};
pub use migrations::apply_migrations;
pub use replica::{database_url_on, set_replica_delay, wait_replayed, REPLICA_SLOT};
pub use running::Running;
pub use workers::Role;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Postgres(#[from] sdlab_embedded_postgres::Error),
    #[error("PostgreSQL: {context}: {source}")]
    Sql {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    /// PostgreSQL died under a statement (the client only saw its connection close); its own
    /// log says why, and what to do about it when the cause is known.
    #[error("{context}\nPostgreSQL's log ({}) says: {line}\n{advice}", log.display())]
    ServerDied {
        context: String,
        log: PathBuf,
        line: String,
        advice: String,
    },
    #[error("migration {}: {message}", file.display())]
    Migration { file: PathBuf, message: String },
    #[error(transparent)]
    Workspace(#[from] workspace::WorkspaceError),
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {0} has no PostgreSQL in its topology")]
    NoPostgres(String),
    #[error("{0}")]
    NotRunning(String),
    #[error(transparent)]
    Nginx(#[from] sdlab_embedded_nginx::Error),
    #[error(transparent)]
    Redis(#[from] redis_server_embedded::Error),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    /// The learner's deploy files (instance count, nginx config) are not usable.
    #[error("{}: {message}", file.display())]
    Deploy { file: PathBuf, message: String },
}

fn sql(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> LabError {
    let context = context.into();
    move |source| LabError::Sql { context, source }
}

/// The lab: where its data lives, where its sources are, and the catalog.
#[derive(Debug, Clone)]
pub struct Lab {
    pub home: LabHome,
    pub sources: Sources,
    pub catalog: Catalog,
    /// `SDLAB_SERVICE_OPT_LEVEL` (the test suite's golden stage: 0): the opt-level the
    /// learner's package alone is compiled at, its dependencies keeping the lab profile's; a
    /// scenario whose lesson is CPU (`cpus_per_instance`) keeps the lab profile's. None:
    /// the lab profile's, as every learner gets.
    pub service_opt_level: Option<u8>,
}

/// Which database the service is given. A lab on a copy (`Scratch`, `Check`) may run beside
/// the learner's playground, even in the same process (the API's check), so the copy's name
/// also names that lab's logs, nginx prefix and CPU groups (`DatabaseChoice::lab_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseChoice {
    /// The learner's database: survives restarts; `reset` restores it from the seed. What the
    /// playground (`start`, the console) uses; never what a check judges.
    Learner,
    /// A fresh copy of the seed, replaced on every use (`check --solution`, `--code`, `--fix`,
    /// tests).
    Scratch,
    /// A fresh copy of the seed, replaced on every use, for a check of the learner's code:
    /// only what the code's `migrations/` declare reaches it (the clean-database rule). Its
    /// own name, so a learner's check and an author's `--solution` check cannot drop each
    /// other's database.
    Check,
}

impl DatabaseChoice {
    fn name(self, spec: &PostgresSpec) -> String {
        match self {
            DatabaseChoice::Learner => spec.database.clone(),
            DatabaseChoice::Scratch => format!("{}_scratch", spec.database),
            DatabaseChoice::Check => format!("{}_check", spec.database),
        }
    }

    /// Whether every start replaces the database with a fresh copy of the seeded template.
    pub fn fresh(self) -> bool {
        !matches!(self, DatabaseChoice::Learner)
    }

    /// The name of a lab on this database when it is not the playground: its logs go to
    /// `logs/<id>/<name>/`, its nginx prefix and CPU groups carry it.
    pub fn lab_name(self) -> Option<&'static str> {
        match self {
            DatabaseChoice::Learner => None,
            DatabaseChoice::Scratch => Some("scratch"),
            DatabaseChoice::Check => Some("check"),
        }
    }
}

/// What to bring up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub code: CodeSource,
    pub database: DatabaseChoice,
    pub progress: Progress,
}

impl Lab {
    /// The lab for `$SDLAB_HOME` and the sources this engine was built from.
    /// `SDLAB_CHECK_HOLD_SECS=N` cuts every check's steady stage to N seconds, never below
    /// the scenario's `[check] min_hold` (the test suite's shorter checks; see
    /// `Profile::hold_at_most`); `SDLAB_SERVICE_OPT_LEVEL` sets `service_opt_level`.
    pub fn from_env() -> Result<Lab, LabError> {
        let mut lab = Lab::new(LabHome::from_env(), Sources::from_env())?;
        lab.service_opt_level = std::env::var("SDLAB_SERVICE_OPT_LEVEL")
            .ok()
            .and_then(|v| v.trim().parse::<u8>().ok())
            .filter(|level| *level <= 3);
        let hold = std::env::var("SDLAB_CHECK_HOLD_SECS").ok();
        if let Some(secs) = hold.as_deref().and_then(|v| v.trim().parse::<u64>().ok()) {
            let hold = std::time::Duration::from_secs(secs.max(1));
            for scenario in &mut lab.catalog.scenarios {
                let check = &mut scenario.check;
                check
                    .profile
                    .hold_at_most(hold.max(check.min_hold.unwrap_or_default()));
            }
        }
        Ok(lab)
    }

    pub fn new(home: LabHome, sources: Sources) -> Result<Lab, LabError> {
        let catalog = sources.catalog()?;
        Ok(Lab {
            home,
            sources,
            catalog,
            service_opt_level: None,
        })
    }

    pub fn scenario(&self, id: &str) -> Result<&Scenario, LabError> {
        Ok(self.catalog.get(id)?)
    }

    /// Where this lab process's nginx keeps its config, logs and temp files for `scenario`.
    /// One per lab process, so `sdlab check` beside a running `sdlab start` has its own.
    pub fn nginx_prefix(&self, scenario: &Scenario) -> PathBuf {
        self.home
            .run_dir()
            .join(format!("nginx-{}-{}", scenario.id, std::process::id()))
    }

    fn state_path(&self, scenario: &Scenario) -> PathBuf {
        RunState::path(&self.home.run_dir(), &scenario.id)
    }

    /// The state of a live lab process on this scenario, if there is one.
    pub fn live_state(&self, scenario: &Scenario) -> Option<RunState> {
        RunState::read(&self.state_path(scenario)).filter(RunState::owner_alive)
    }

    fn write_state(
        &self,
        scenario: &Scenario,
        db: &Database,
        services: &[ServiceProcess],
        workers: &[ServiceProcess],
        nginx_url: Option<String>,
        redis_url: Option<String>,
    ) -> Result<(), LabError> {
        if !db.owned() {
            return Ok(());
        }
        let me = std::process::id();
        let state = RunState {
            scenario: scenario.id.clone(),
            owner_pid: me,
            owner_start_time: process::start_time(me),
            postgres_url: Some(db.admin_url()),
            postmaster_pid: db.pg.postmaster_pid(),
            replica_url: db.replica_admin_url(),
            replica_pid: db.replica.as_ref().and_then(PgLink::postmaster_pid),
            services: services.iter().map(ServiceState::of).collect(),
            workers: workers.iter().map(ServiceState::of).collect(),
            nginx_url,
            redis_url,
            metrics_port: None,
        };
        state.write(&db.state.path).map_err(|source| LabError::Io {
            what: format!("write {}", db.state.path.display()),
            source,
        })
    }
}
