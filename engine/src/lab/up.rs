//! `Lab::up`: the start orchestration. The database (start, seed, learner's copy) and the code
//! (prepare, build) at the same time, then migrations, the stub dependency, the instances (each
//! with its CPU limit) and nginx in front of them, then the run state recorded.

use std::time::Duration;

use super::database::{recreate_from_template, Database};
use super::{apply_migrations, DatabaseChoice, Lab, LabError, Running, UpOptions};
use crate::build::Built;
use crate::catalog::Scenario;
use crate::cgroup::CpuLimiter;
use crate::deploy::Deploy;
use crate::process::{self, ServiceProcess, ServiceSpec};
use crate::progress::{Progress, Step};
use crate::workspace::{self, PreparedCode};

/// How long a service may take between being spawned and answering `/healthz`, unless
/// `SDLAB_READY_TIMEOUT_SECS` says otherwise (a slow machine; the reliability tests).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn ready_timeout() -> Duration {
    std::env::var("SDLAB_READY_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(READY_TIMEOUT, Duration::from_secs)
}

impl Lab {
    /// Brings the scenario up: database, code prepared and built, migrations, services ready.
    pub async fn up(&self, scenario: &Scenario, opts: UpOptions) -> Result<Running, LabError> {
        let progress = &opts.progress;
        if scenario.topology.nginx.is_some() {
            // A missing nginx is known now, not after the seed and the build.
            sdlab_embedded_nginx::find_binary()?;
        }
        if scenario.topology.redis.is_some() {
            redis_server_embedded::find_binary()?;
        }
        let (database, code, built) = self.database_and_code(scenario, &opts).await?;
        if let Some(db) = &database {
            migrate(db, opts.database, &code, progress).await?;
        }
        // From here on, whatever is started belongs to `running`: an error drops it, and
        // dropping it stops what was started so far.
        let mut running = Running {
            scenario: scenario.clone(),
            code: code.clone(),
            database,
            database_choice: opts.database,
            services: Vec::new(),
            service_specs: Vec::new(),
            workers: Vec::new(),
            worker_specs: Vec::new(),
            dependency: None,
            nginx: None,
            redis: None,
            cgroups: Vec::new(),
            cpu_limiter: None,
            throttles: Vec::new(),
        };
        start_dependency(&mut running, progress).await?;
        self.start_redis(&mut running, progress).await?;
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
        running.cpu_limiter = cpu_limiter(scenario, &cgroup_key(&running), progress);
        self.start_instances(scenario, &mut running, &built, instances, progress)
            .await?;
        self.start_workers(&mut running, &built, instances, progress)
            .await?;
        if let Some(deploy) = &deploy {
            self.start_nginx(&mut running, deploy, progress).await?;
        }
        if let Some(db) = &running.database {
            if db.owned() {
                self.write_state(
                    scenario,
                    db,
                    &running.services,
                    &running.workers,
                    running.nginx.as_ref().map(|n| n.url()),
                    running.redis.as_ref().map(|r| r.url()),
                )?;
            }
        }
        Ok(running)
    }

    /// The database (start, seed) and the code (prepare, build) do not depend on each other,
    /// so they run at the same time: a first start takes the longer of the two, not their
    /// sum. A failed build still lets the seed finish (the next start needs it); a failed
    /// database abandons the build (dropping it stops cargo).
    async fn database_and_code(
        &self,
        scenario: &Scenario,
        opts: &UpOptions,
    ) -> Result<(Option<Database>, PreparedCode, Built), LabError> {
        let progress = &opts.progress;
        let database = async {
            let Some(_) = scenario.topology.postgres else {
                return Ok(None);
            };
            let db = self.database(scenario, progress).await?;
            if opts.database.fresh() {
                // A file copy of the seeded template (see ARCHITECTURE.md, the clean-database
                // rule, for what it costs): the code's migrations then run on it from scratch.
                let started = std::time::Instant::now();
                recreate_from_template(&db, opts.database).await?;
                progress.info(format!(
                    "a fresh copy of the seeded database ({}) in {:.1} s",
                    db.url(opts.database).rsplit('/').next().unwrap_or_default(),
                    started.elapsed().as_secs_f64()
                ));
            }
            // The services may read from the replica as soon as they start: it must hold the
            // database (a fresh copy is seconds old) and the role's password by then.
            super::wait_replayed(&db).await?;
            Ok::<_, LabError>(Some(db))
        };
        let code = self.prepare_and_build(scenario, opts);
        let (database, code) = tokio::try_join!(database, async { Ok(code.await) })?;
        let (code, built) = code?;
        Ok((database, code, built))
    }

    /// The code to run, copied into place and built.
    async fn prepare_and_build(
        &self,
        scenario: &Scenario,
        opts: &UpOptions,
    ) -> Result<(PreparedCode, Built), LabError> {
        let progress = &opts.progress;
        let code = progress
            .step(Step::PrepareWorkspace, async {
                let code = workspace::prepare(&self.home, &self.sources, scenario, &opts.code)?;
                let note = code.dir.display().to_string();
                Ok::<_, LabError>((code, note))
            })
            .await?;
        let built = progress
            .step(Step::BuildService, async {
                let opt_level = self
                    .service_opt_level
                    .filter(|_| scenario.topology.cpus_per_instance.is_none());
                let built = crate::build::build(
                    &code,
                    &self.home.target_dir(),
                    &self.home.run_dir().join("bin"),
                    opt_level,
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
        Ok((code, built))
    }

    /// Spawns the `instances` instances one after the other, each in its CPU limit and ready
    /// (answering `/healthz`) before the next.
    async fn start_instances(
        &self,
        scenario: &Scenario,
        running: &mut Running,
        built: &Built,
        instances: u32,
        progress: &Progress,
    ) -> Result<(), LabError> {
        let logs_dir = self.lab_logs_dir(running);
        let shared = shared_env(running, instances);
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
                    if scenario.topology.workers.is_some() {
                        // Same binary as the workers: the role says which part to run.
                        env.push(("SDLAB_ROLE".to_string(), "web".to_string()));
                    }
                    env.extend(shared.iter().cloned());
                    let spec = ServiceSpec {
                        binary: built.binary.clone(),
                        cwd: running.code.dir.clone(),
                        env,
                        port,
                        instance,
                        log_path: logs_dir.join(format!("service-{instance}.log")),
                    };
                    let mut service = ServiceProcess::spawn(spec.clone())?;
                    limit_cpu(running, &service, instance)?;
                    service.wait_ready(ready_timeout()).await?;
                    running.services.push(service);
                    running.service_specs.push(spec);
                }
                let ports: Vec<String> = running
                    .services
                    .iter()
                    .map(|s| s.port.to_string())
                    .collect();
                Ok::<_, LabError>(((), format!("listening on 127.0.0.1:{}", ports.join(", "))))
            })
            .await
    }

    /// The scenario's Redis, empty at every start (unless the scenario keeps its data), in
    /// `<run dir>/redis-<id>` (`-check` beside it for a check's lab); a server a crashed run
    /// left there is stopped first (redis-server-embedded's stale clean-up).
    async fn start_redis(
        &self,
        running: &mut Running,
        progress: &Progress,
    ) -> Result<(), LabError> {
        let Some(spec) = &running.scenario.topology.redis else {
            return Ok(());
        };
        let mut dir = self
            .home
            .run_dir()
            .join(format!("redis-{}", running.scenario.id))
            .into_os_string();
        if let Some(name) = running.database_choice.lab_name() {
            dir.push(format!("-{name}"));
        }
        let mut opts = redis_server_embedded::RedisOptions::new(std::path::PathBuf::from(dir))
            .persistence(spec.persistence);
        if let Some(bytes) = spec.maxmemory {
            opts = opts.maxmemory(bytes);
        }
        // The learner's settings file, when the scenario gives one, chooses the policy.
        let policy = match &spec.config {
            Some(file) => crate::deploy::read_redis(&running.code.dir, file)
                .map_err(|e| LabError::Deploy {
                    file: e.file,
                    message: e.message,
                })?
                .or_else(|| spec.policy.clone()),
            None => spec.policy.clone(),
        };
        if let Some(policy) = &policy {
            opts = opts.policy(policy.clone());
        }
        let redis = redis_server_embedded::Redis::start(opts).await?;
        progress.info(format!(
            "redis-server (pid {}) on {}{}",
            redis.pid(),
            redis.url(),
            match (spec.maxmemory, &policy) {
                (Some(b), p) => format!(
                    ", maxmemory {} MiB, {}",
                    b >> 20,
                    p.as_deref().unwrap_or("noeviction")
                ),
                (None, _) => String::new(),
            }
        ));
        running.redis = Some(redis);
        Ok(())
    }

    /// nginx in front of the instances, with the learner's config.
    async fn start_nginx(
        &self,
        running: &mut Running,
        deploy: &Deploy,
        progress: &Progress,
    ) -> Result<(), LabError> {
        let Some(spec) = &running.scenario.topology.nginx else {
            return Ok(());
        };
        let ports: Vec<u16> = running.services.iter().map(|s| s.port).collect();
        let mut prefix = self.nginx_prefix(&running.scenario).into_os_string();
        if let Some(name) = running.database_choice.lab_name() {
            // `nginx-<id>-<pid>-check`: the stale clean-up still reads the owner's pid.
            prefix.push(format!("-{name}"));
        }
        let nginx = sdlab_embedded_nginx::Nginx::start(sdlab_embedded_nginx::NginxOptions {
            prefix: prefix.into(),
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
        Ok(())
    }
}

/// Applies the code's pending migrations to the database the services will use.
async fn migrate(
    db: &Database,
    choice: DatabaseChoice,
    code: &PreparedCode,
    progress: &Progress,
) -> Result<(), LabError> {
    progress
        .step(Step::ApplyMigrations, async {
            let applied = apply_migrations(&db.service_url(choice), code).await?;
            let note = if applied.is_empty() {
                "none pending".to_string()
            } else {
                format!("applied {}", applied.join(", "))
            };
            Ok::<_, LabError>(((), note))
        })
        .await
}

/// The stub outside service, when the topology has one.
async fn start_dependency(running: &mut Running, progress: &Progress) -> Result<(), LabError> {
    let Some(spec) = &running.scenario.topology.dependency else {
        return Ok(());
    };
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
    Ok(())
}

/// The group the instances' CPU groups go under: the scenario's id, with the lab's name when
/// it runs beside the playground. The groups are named `<lab pid>-instance-<n>`, and the API
/// runs its check lab in the playground's process: without the name, check instance 1 would
/// join (and share the quota of) the playground's instance 1.
fn cgroup_key(running: &Running) -> String {
    match running.database_choice.lab_name() {
        Some(name) => format!("{}-{name}", running.scenario.id),
        None => running.scenario.id.clone(),
    }
}

/// How the instances' CPU will be limited, when the topology gives each a share (stale
/// instance groups of a crashed run removed first).
fn cpu_limiter(scenario: &Scenario, key: &str, progress: &Progress) -> Option<CpuLimiter> {
    let cpus = scenario.topology.cpus_per_instance?;
    let limiter = crate::cgroup::detect();
    limiter.clean_stale(key);
    match &limiter {
        CpuLimiter::Unavailable { reason } => progress.info(reason.clone()),
        l => progress.info(format!("each instance gets {cpus} CPU ({})", l.describe())),
    }
    Some(limiter)
}

/// Puts a just-spawned instance under its CPU share: its own cgroup, or, where none can be
/// made, a signal throttle.
fn limit_cpu(
    running: &mut Running,
    service: &ServiceProcess,
    instance: u32,
) -> Result<(), LabError> {
    let (Some(cpus), Some(limiter)) = (
        running.scenario.topology.cpus_per_instance,
        &running.cpu_limiter,
    ) else {
        return Ok(());
    };
    if matches!(limiter, CpuLimiter::Unavailable { .. }) {
        running
            .throttles
            .push(crate::cgroup::Throttle::start(service.pid, cpus));
    } else {
        let group =
            crate::cgroup::InstanceCgroup::create(limiter, &cgroup_key(running), instance, cpus)?;
        group.add(service.pid)?;
        running.cgroups.push(group);
    }
    Ok(())
}

/// What every instance and worker is told besides its own port and label: the database (the
/// service role's URL; the lab's own tools keep the superuser's), the replica, the stub
/// dependency, Redis, how many instances share the database, and the CPU fallback.
pub(super) fn shared_env(running: &Running, instances: u32) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(d) = &running.database {
        env.push((
            "DATABASE_URL".to_string(),
            d.service_url(running.database_choice),
        ));
        if let Some(url) = d.replica_service_url(running.database_choice) {
            env.push(("DATABASE_REPLICA_URL".to_string(), url));
        }
    }
    if let Some(d) = &running.dependency {
        env.push((d.spec.env.clone(), d.url()));
    }
    if let Some(r) = &running.redis {
        env.push(("REDIS_URL".to_string(), r.url()));
    }
    // How many instances share the database: a service may split its pool by it.
    env.push(("INSTANCES".to_string(), instances.to_string()));
    if let (Some(cpus), Some(CpuLimiter::Unavailable { .. })) = (
        running.scenario.topology.cpus_per_instance,
        &running.cpu_limiter,
    ) {
        // No quota possible: cap the threads of the CPU-heavy work instead.
        let threads = (cpus.ceil() as u32).max(1);
        env.push((crate::cgroup::FALLBACK_ENV.to_string(), threads.to_string()));
    }
    env
}
