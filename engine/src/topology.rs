//! Brings a scenario up and down: PostgreSQL (started, seeded once, cached), the learner's
//! (or the solution's) service built and run, migrations applied, and the run state recorded
//! so `stop` and the next start can find what is running.
//!
//! A running lab is a `Running`: dropping it stops the services it started and the
//! PostgreSQL server it owns. A second lab process on the same scenario (say `sdlab check`
//! while `sdlab start` runs) attaches to the PostgreSQL the first one owns instead of
//! starting another on the same data dir.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sdlab_embedded_postgres::{PgOptions, PgServer};
use sqlx::{Connection, Executor, PgConnection};

use crate::catalog::{Catalog, CatalogError, PostgresSpec, Scenario};
use crate::home::{LabHome, Sources};
use crate::process::{self, RunState, ServiceProcess, ServiceSpec, ServiceState};
use crate::progress::{Progress, Step};
use crate::workspace::{self, CodeSource, PreparedCode};

/// How long a service may take between being spawned and answering `/healthz`, unless
/// `SDLAB_READY_TIMEOUT_SECS` says otherwise (a slow machine; the reliability tests).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn ready_timeout() -> Duration {
    std::env::var("SDLAB_READY_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(READY_TIMEOUT, Duration::from_secs)
}

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
}

/// Which database the service is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseChoice {
    /// The learner's database: survives restarts; `reset` restores it from the seed.
    Learner,
    /// A fresh copy of the seed, replaced on every use (`check --solution`, tests).
    Scratch,
}

impl DatabaseChoice {
    fn name(self, spec: &PostgresSpec) -> String {
        match self {
            DatabaseChoice::Learner => spec.database.clone(),
            DatabaseChoice::Scratch => format!("{}_scratch", spec.database),
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
    state: StateFile,
}

/// The run-state file of a server this process owns: removed when the server is let go,
/// however that happens (shutdown, an error after start, a panic).
#[derive(Debug)]
struct StateFile {
    path: PathBuf,
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

/// A scenario brought up by this process.
#[derive(Debug)]
pub struct Running {
    pub scenario: Scenario,
    pub code: PreparedCode,
    pub database: Option<Database>,
    pub database_choice: DatabaseChoice,
    pub services: Vec<ServiceProcess>,
    /// The stub outside service, when the topology has one (stops when dropped).
    pub dependency: Option<crate::dependency::Dependency>,
    /// The load balancer in front of the instances, when the topology has one.
    pub nginx: Option<sdlab_embedded_nginx::Nginx>,
    /// Each instance's CPU quota (same order as `services`); removed when dropped.
    pub cgroups: Vec<crate::cgroup::InstanceCgroup>,
    /// How the instances' CPU is limited, when the topology asks for a share per instance.
    pub cpu_limiter: Option<crate::cgroup::CpuLimiter>,
    /// Where no cgroup could be made: each instance's share, enforced with signals.
    pub throttles: Vec<crate::cgroup::Throttle>,
}

impl Running {
    /// Base URL of instance `i` (0-based).
    pub fn service_url(&self, i: usize) -> Option<String> {
        self.services
            .get(i)
            .map(|s| format!("http://127.0.0.1:{}", s.port))
    }

    /// Where load goes: every instance's base URL, taken in turn by the load generator
    /// (client-side round robin, as there is no load balancer in front of them).
    /// With nginx in front, its one URL: balancing is then nginx's job (and the lesson).
    pub fn load_targets(&self) -> Vec<String> {
        if let Some(nginx) = &self.nginx {
            return vec![nginx.url()];
        }
        (0..self.services.len())
            .filter_map(|i| self.service_url(i))
            .collect()
    }

    /// What the metrics collector should watch.
    pub fn targets(&self) -> crate::metrics::Targets {
        crate::metrics::Targets {
            services: self
                .services
                .iter()
                .map(|s| (s.instance, s.port, s.pid))
                .collect(),
            postgres: self.database.as_ref().map(|d| {
                (
                    d.admin_url(),
                    self.database_choice.name(&d.spec),
                    d.pg.postmaster_pid(),
                )
            }),
        }
    }

    /// The URL of the database the services use.
    pub fn database_url(&self) -> Option<String> {
        self.database.as_ref().map(|d| d.url(self.database_choice))
    }

    /// Stops the services, then PostgreSQL if this process owns it.
    pub async fn shutdown(mut self) {
        // Resumed (SIGCONT) by their throttles, paused instances can act on SIGTERM.
        self.throttles.clear();
        for s in &mut self.services {
            s.stop(Duration::from_secs(5)).await;
        }
        self.dependency = None;
        self.cgroups.clear();
        if let Some(nginx) = self.nginx.take() {
            nginx.stop().await;
        }
        if let Some(db) = self.database.take() {
            db.shutdown().await;
        }
    }
}

impl Lab {
    /// The lab for `$SDLAB_HOME` and the sources this engine was built from.
    pub fn from_env() -> Result<Lab, LabError> {
        Lab::new(LabHome::from_env(), Sources::from_env())
    }

    pub fn new(home: LabHome, sources: Sources) -> Result<Lab, LabError> {
        let catalog = sources.catalog()?;
        Ok(Lab {
            home,
            sources,
            catalog,
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

    /// Stops the nginx of every lab process on `scenario` that is gone, and removes its
    /// prefix. Returns what was stopped.
    fn clean_stale_nginx(&self, scenario: &Scenario) -> Result<Vec<String>, LabError> {
        let mut stopped = Vec::new();
        let start = format!("nginx-{}-", scenario.id);
        let Ok(entries) = std::fs::read_dir(self.home.run_dir()) else {
            return Ok(stopped);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(owner) = name
                .strip_prefix(&start)
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if owner == std::process::id() || process::alive(owner) {
                continue;
            }
            for pid in sdlab_embedded_nginx::stop_stale(&entry.path())? {
                stopped.push(format!("nginx (pid {pid})"));
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
        Ok(stopped)
    }

    fn state_path(&self, scenario: &Scenario) -> PathBuf {
        RunState::path(&self.home.run_dir(), &scenario.id)
    }

    /// The state of a live lab process on this scenario, if there is one.
    pub fn live_state(&self, scenario: &Scenario) -> Option<RunState> {
        RunState::read(&self.state_path(scenario)).filter(RunState::owner_alive)
    }

    /// Stops what a crashed run left: its services and its PostgreSQL server. Returns a
    /// description of what was stopped (empty when there was nothing).
    pub fn clean_stale(&self, scenario: &Scenario) -> Result<Vec<String>, LabError> {
        let mut stopped = Vec::new();
        let path = self.state_path(scenario);
        if let Some(state) = RunState::read(&path) {
            if state.owner_alive() {
                return Ok(stopped);
            }
            for pid in state.kill_services() {
                stopped.push(format!("service (pid {pid})"));
            }
            let _ = std::fs::remove_file(&path);
        }
        if scenario.topology.nginx.is_some() {
            stopped.extend(self.clean_stale_nginx(scenario)?);
        }
        if scenario.topology.cpus_per_instance.is_some() {
            let removed = crate::cgroup::detect().clean_stale(&scenario.id);
            if removed > 0 {
                stopped.push(format!("{removed} instance cgroup(s)"));
            }
        }
        if let Some(pid) = sdlab_embedded_postgres::stop_stale(&self.home.cluster_dir(scenario))? {
            stopped.push(format!("PostgreSQL (pid {pid})"));
        }
        Ok(stopped)
    }

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

    /// Seeds the template database once; returns a note for the progress line.
    async fn seed(&self, scenario: &Scenario, db: &Database) -> Result<String, LabError> {
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

    /// Restores the learner's database from the seed (the learner's code is `workspace::reset_code`).
    pub async fn reset_database(&self, db: &Database) -> Result<(), LabError> {
        recreate_from_template(db, DatabaseChoice::Learner).await
    }

    /// Brings the scenario up: database, code prepared and built, migrations, services ready.
    pub async fn up(&self, scenario: &Scenario, opts: UpOptions) -> Result<Running, LabError> {
        let progress = &opts.progress;
        if scenario.topology.nginx.is_some() {
            // A missing nginx is known now, not after the seed and the build.
            sdlab_embedded_nginx::find_binary()?;
        }
        // The database (start, seed) and the code (prepare, build) do not depend on each
        // other, so they run at the same time: a first start takes the longer of the two, not
        // their sum. A failed build still lets the seed finish (the next start needs it); a
        // failed database abandons the build (dropping it stops cargo).
        let database = async {
            let Some(_) = scenario.topology.postgres else {
                return Ok(None);
            };
            let db = self.database(scenario, progress).await?;
            if let DatabaseChoice::Scratch = opts.database {
                recreate_from_template(&db, DatabaseChoice::Scratch).await?;
            }
            Ok::<_, LabError>(Some(db))
        };
        let code = async {
            let code = progress
                .step(Step::PrepareWorkspace, async {
                    let code = workspace::prepare(&self.home, &self.sources, scenario, &opts.code)?;
                    let note = code.dir.display().to_string();
                    Ok::<_, LabError>((code, note))
                })
                .await?;
            let built = progress
                .step(Step::BuildService, async {
                    let built = crate::build::build(
                        &code,
                        &self.home.target_dir(),
                        &self.home.run_dir().join("bin"),
                    )
                    .await?;
                    let mut note = if built.compiled {
                        "compiled"
                    } else {
                        "up to date"
                    }
                    .to_string();
                    if built.waited_for_lock {
                        note.push_str(", after waiting for another build in the same target dir");
                    }
                    Ok::<_, LabError>((built, note))
                })
                .await?;
            Ok::<_, LabError>((code, built))
        };
        let (database, code) = tokio::try_join!(database, async { Ok(code.await) })?;
        let (code, built) = code?;
        if let Some(db) = &database {
            progress
                .step(Step::ApplyMigrations, async {
                    let applied = apply_migrations(&db.url(opts.database), &code).await?;
                    let note = if applied.is_empty() {
                        "none pending".to_string()
                    } else {
                        format!("applied {}", applied.join(", "))
                    };
                    Ok::<_, LabError>(((), note))
                })
                .await?;
        }
        let mut running = Running {
            scenario: scenario.clone(),
            code: code.clone(),
            database,
            database_choice: opts.database,
            services: Vec::new(),
            dependency: None,
            nginx: None,
            cgroups: Vec::new(),
            cpu_limiter: None,
            throttles: Vec::new(),
        };
        if let Some(spec) = &scenario.topology.dependency {
            let dependency = crate::dependency::Dependency::start(spec.clone())
                .await
                .map_err(|source| LabError::Io {
                    what: format!("start the stub dependency {:?} on 127.0.0.1", spec.name),
                    source,
                })?;
            progress.info(format!(
                "{} (stub, answers in {} ms) at {} as {}",
                spec.name,
                spec.latency.as_millis(),
                dependency.url(),
                spec.env
            ));
            running.dependency = Some(dependency);
        }
        let dependency_env = running
            .dependency
            .as_ref()
            .map(|d| (d.spec.env.clone(), d.url()));
        let database_url = running.database_url();
        // With nginx in front, the learner's deploy files say how many instances run.
        let deploy = match &scenario.topology.nginx {
            Some(spec) => {
                Some(
                    crate::deploy::read(&code.dir, spec).map_err(|e| LabError::Deploy {
                        file: e.file,
                        message: e.message,
                    })?,
                )
            }
            None => None,
        };
        let instances = deploy
            .as_ref()
            .map_or(scenario.topology.instances, |d| d.instances);
        if let Some(cpus) = scenario.topology.cpus_per_instance {
            let limiter = crate::cgroup::detect();
            limiter.clean_stale(&scenario.id);
            match &limiter {
                crate::cgroup::CpuLimiter::Unavailable { reason } => progress.info(reason.clone()),
                l => progress.info(format!("each instance gets {cpus} CPU ({})", l.describe())),
            }
            running.cpu_limiter = Some(limiter);
        }
        progress
            .step(Step::StartService, async {
                for instance in 1..=instances {
                    let port = process::free_port().map_err(|source| LabError::Io {
                        what: "pick a free port".to_string(),
                        source,
                    })?;
                    let mut env = vec![
                        ("PORT".to_string(), port.to_string()),
                        ("INSTANCE_ID".to_string(), instance.to_string()),
                        ("RUST_LOG".to_string(), "info".to_string()),
                    ];
                    if let Some(url) = &database_url {
                        env.push(("DATABASE_URL".to_string(), url.clone()));
                    }
                    if let Some(dep) = &dependency_env {
                        env.push(dep.clone());
                    }
                    // How many instances share the database: a service may split its pool by it.
                    env.push(("INSTANCES".to_string(), instances.to_string()));
                    if let (Some(cpus), Some(crate::cgroup::CpuLimiter::Unavailable { .. })) =
                        (scenario.topology.cpus_per_instance, &running.cpu_limiter)
                    {
                        // No quota possible: cap the threads of the CPU-heavy work instead.
                        let threads = (cpus.ceil() as u32).max(1);
                        env.push((crate::cgroup::FALLBACK_ENV.to_string(), threads.to_string()));
                    }
                    let mut service = ServiceProcess::spawn(ServiceSpec {
                        binary: built.binary.clone(),
                        cwd: code.dir.clone(),
                        env,
                        port,
                        instance,
                        log_path: self
                            .home
                            .logs_dir(scenario)
                            .join(format!("service-{instance}.log")),
                    })?;
                    if let (Some(cpus), Some(limiter)) =
                        (scenario.topology.cpus_per_instance, &running.cpu_limiter)
                    {
                        if matches!(limiter, crate::cgroup::CpuLimiter::Unavailable { .. }) {
                            running
                                .throttles
                                .push(crate::cgroup::Throttle::start(service.pid, cpus));
                        } else {
                            let group = crate::cgroup::InstanceCgroup::create(
                                limiter,
                                &scenario.id,
                                instance,
                                cpus,
                            )?;
                            group.add(service.pid)?;
                            running.cgroups.push(group);
                        }
                    }
                    service.wait_ready(ready_timeout()).await?;
                    running.services.push(service);
                }
                let ports: Vec<String> = running
                    .services
                    .iter()
                    .map(|s| s.port.to_string())
                    .collect();
                Ok::<_, LabError>(((), format!("listening on 127.0.0.1:{}", ports.join(", "))))
            })
            .await?;
        if let (Some(deploy), Some(spec)) = (&deploy, &scenario.topology.nginx) {
            let ports: Vec<u16> = running.services.iter().map(|s| s.port).collect();
            let nginx = sdlab_embedded_nginx::Nginx::start(sdlab_embedded_nginx::NginxOptions {
                prefix: self.nginx_prefix(scenario),
                site: crate::deploy::render(&deploy.nginx_site, &ports),
                site_label: spec.config.display().to_string(),
                port: None,
            })
            .await?;
            progress.info(format!(
                "nginx (pid {}) on {} in front of {} instance(s), config {}",
                nginx.pid(),
                nginx.url(),
                ports.len(),
                deploy.nginx_file.display()
            ));
            running.nginx = Some(nginx);
        }
        if let Some(db) = &running.database {
            if db.owned() {
                self.write_state(
                    scenario,
                    db,
                    &running.services,
                    running.nginx.as_ref().map(|n| n.url()),
                )?;
            }
        }
        Ok(running)
    }

    fn write_state(
        &self,
        scenario: &Scenario,
        db: &Database,
        services: &[ServiceProcess],
        nginx_url: Option<String>,
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
            services: services
                .iter()
                .map(|s| ServiceState {
                    pid: s.pid,
                    start_time: process::start_time(s.pid),
                    port: s.port,
                    instance: s.instance,
                })
                .collect(),
            nginx_url,
        };
        state.write(&db.state.path).map_err(|source| LabError::Io {
            what: format!("write {}", db.state.path.display()),
            source,
        })
    }

    /// Asks the lab process running `scenario` to stop (SIGTERM), waits for it, and cleans up
    /// whatever is left. Returns false when nothing was running.
    pub async fn stop(&self, scenario: &Scenario) -> Result<bool, LabError> {
        let path = self.state_path(scenario);
        let Some(state) = RunState::read(&path) else {
            return Ok(!self.clean_stale(scenario)?.is_empty());
        };
        if state.owner_alive() {
            process::signal(state.owner_pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while state.owner_alive() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if state.owner_alive() {
                process::signal(state.owner_pid, libc::SIGKILL);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        self.clean_stale(scenario)?;
        Ok(true)
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

async fn recreate_from_template(db: &Database, choice: DatabaseChoice) -> Result<(), LabError> {
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

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), LabError> {
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .map_err(sql(format!("drop database {name}")))?;
    Ok(())
}

async fn database_exists(admin: &mut PgConnection, name: &str) -> Result<bool, LabError> {
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await
        .map_err(sql("list databases"))
}

/// Applies the code's `migrations/*.sql` not yet applied to this database, in name order,
/// each once, like a deploy's migration step. Returns the files applied.
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
                message: match e.as_database_error() {
                    Some(db) => db.message().to_string(),
                    None => e.to_string(),
                },
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
