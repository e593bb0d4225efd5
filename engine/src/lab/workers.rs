//! The worker role (`[topology.workers]`): the service's binary run again with
//! `SDLAB_ROLE=worker`, one process per worker, each with its own port for `/healthz` and
//! `/metrics` and no load sent to it; and starting a killed instance or worker again (the
//! check's `restart_at`).
//!
//! A worker is a `ServiceProcess` like an instance: it dies with the lab (`PR_SET_PDEATHSIG`),
//! is listed in the run state (`RunState::workers`) so a crashed lab's workers are stopped by
//! the next start's clean-up, and is stopped first at shutdown.

use super::up::{ready_timeout, shared_env};
use super::{Lab, LabError, Running};
use crate::build::Built;
use crate::process::{self, ServiceProcess, ServiceSpec};
use crate::progress::Progress;

/// Which kind of process to crash and start again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Instance,
    Worker,
}

impl Lab {
    /// Where this lab's services and workers log: `logs/<id>/`, or `logs/<id>/<name>/` for a
    /// lab beside the playground (a check), so the Logs tab keeps showing the playground's.
    pub(super) fn lab_logs_dir(&self, running: &Running) -> std::path::PathBuf {
        let mut dir = self.home.logs_dir(&running.scenario);
        if let Some(name) = running.database_choice.lab_name() {
            dir.push(name);
        }
        dir
    }

    /// Spawns the topology's workers, each ready (answering `/healthz`) before the next.
    pub(super) async fn start_workers(
        &self,
        running: &mut Running,
        built: &Built,
        instances: u32,
        progress: &Progress,
    ) -> Result<(), LabError> {
        let Some(spec) = running.scenario.topology.workers else {
            return Ok(());
        };
        let logs_dir = self.lab_logs_dir(running);
        let shared = shared_env(running, instances);
        for worker in 1..=spec.count {
            let port = process::free_port().map_err(|source| LabError::Io {
                what: "pick a free port".to_string(),
                source,
            })?;
            let mut env = vec![
                ("PORT".to_string(), port.to_string()),
                // The kit labels logs and metrics with INSTANCE_ID.
                ("INSTANCE_ID".to_string(), format!("worker-{worker}")),
                ("WORKER_ID".to_string(), worker.to_string()),
                ("SDLAB_ROLE".to_string(), "worker".to_string()),
                ("RUST_LOG".to_string(), "info".to_string()),
            ];
            env.extend(shared.iter().cloned());
            let spec = ServiceSpec {
                binary: built.binary.clone(),
                cwd: running.code.dir.clone(),
                env,
                port,
                instance: worker,
                log_path: logs_dir.join(format!("worker-{worker}.log")),
            };
            let mut process = ServiceProcess::spawn(spec.clone())?;
            process.wait_ready(ready_timeout()).await?;
            running.workers.push(process);
            running.worker_specs.push(spec);
        }
        let ports: Vec<String> = running.workers.iter().map(|w| w.port.to_string()).collect();
        progress.info(format!(
            "{} worker(s) (SDLAB_ROLE=worker) on 127.0.0.1:{}",
            spec.count,
            ports.join(", ")
        ));
        Ok(())
    }
}

impl Running {
    /// Sends `signal` to the instance or worker at `index` (0-based): SIGKILL as a crash
    /// would, SIGTERM as a deploy would (the kit's graceful shutdown finishes the requests
    /// in flight, then the process exits, dropping whatever else it was doing).
    pub fn kill(&self, role: Role, index: usize, signal: i32) {
        let processes = match role {
            Role::Instance => &self.services,
            Role::Worker => &self.workers,
        };
        if let Some(p) = processes.get(index) {
            process::signal(p.pid, signal);
        }
    }

    /// Starts the instance or worker at `index` (0-based) again, after `kill`, with the same
    /// port, environment and log, as a supervisor would; returns once it answers `/healthz`.
    /// The caller owns the new process (dropping it kills it): `Running` keeps the dead one,
    /// and the new one dies with the lab all the same (`PR_SET_PDEATHSIG`).
    ///
    /// # Errors
    /// [`LabError::NotRunning`] when there is no such process; the new process's start-up
    /// errors.
    pub async fn restart(&self, role: Role, index: usize) -> Result<ServiceProcess, LabError> {
        let (processes, specs) = match role {
            Role::Instance => (&self.services, &self.service_specs),
            Role::Worker => (&self.workers, &self.worker_specs),
        };
        let (Some(old), Some(spec)) = (processes.get(index), specs.get(index)) else {
            return Err(LabError::NotRunning(format!(
                "no {role:?} {} to restart",
                index + 1
            )));
        };
        // Gone (a zombie has closed its sockets) before its port is bound again; a graceful
        // shutdown that takes longer than the lab's stop grace is cut short, as at shutdown.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process::alive(old.pid) {
            if std::time::Instant::now() >= deadline {
                process::signal(old.pid, libc::SIGKILL);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let mut fresh = ServiceProcess::spawn(spec.clone())?;
        fresh.wait_ready(ready_timeout()).await?;
        if role == Role::Instance {
            // Back into its CPU group, when the instances have one.
            if let Some(group) = self.cgroups.get(index) {
                group.add(fresh.pid)?;
            }
        }
        Ok(fresh)
    }
}
