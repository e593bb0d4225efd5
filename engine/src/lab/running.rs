//! `Running`: what a start brought up (services, workers, database, nginx, stub dependency, CPU limits),
//! where load and the metrics collector go, and the shutdown that stops it all.

use std::time::Duration;

use super::database::Database;
use super::{DatabaseChoice, LabError};
use crate::catalog::Scenario;
use crate::process::ServiceProcess;
use crate::workspace::PreparedCode;

/// A scenario brought up by this process.
#[derive(Debug)]
pub struct Running {
    pub scenario: Scenario,
    pub code: PreparedCode,
    pub database: Option<Database>,
    pub database_choice: DatabaseChoice,
    pub services: Vec<ServiceProcess>,
    /// How each instance was started (same order as `services`), to start it again.
    pub service_specs: Vec<crate::process::ServiceSpec>,
    /// The background workers (`[topology.workers]`): same binary, `SDLAB_ROLE=worker`.
    pub workers: Vec<ServiceProcess>,
    /// How each worker was started (same order as `workers`), to start it again.
    pub worker_specs: Vec<crate::process::ServiceSpec>,
    /// The stub outside service, when the topology has one (stops when dropped).
    pub dependency: Option<crate::dependency::Dependency>,
    /// The load balancer in front of the instances, when the topology has one.
    pub nginx: Option<sdlab_embedded_nginx::Nginx>,
    /// The scenario's Redis, when the topology has one (stops when dropped).
    pub redis: Option<redis_server_embedded::Redis>,
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
            redis: self.redis.as_ref().map(|r| r.port()),
            replica: self.database.as_ref().and_then(|d| {
                d.replica_admin_url()
                    .map(|url| (url, d.replica.as_ref().and_then(|r| r.postmaster_pid())))
            }),
        }
    }

    /// The superuser's URL of the services' database on the streaming replica (same name as
    /// on the primary), when the scenario has one: a check reads what the replica serves.
    pub fn replica_url(&self) -> Option<String> {
        self.database
            .as_ref()
            .and_then(|d| d.replica_url(self.database_choice))
    }

    /// Changes the replica's apply delay while it runs (see `lab::set_replica_delay`).
    ///
    /// # Errors
    /// [`LabError::NotRunning`] when the scenario has no replica; SQL errors.
    pub async fn set_replica_delay(&self, delay: Duration) -> Result<(), LabError> {
        let url = self
            .database
            .as_ref()
            .and_then(Database::replica_admin_url)
            .ok_or_else(|| LabError::NotRunning(format!("{} has no replica", self.scenario.id)))?;
        super::set_replica_delay(&url, delay).await
    }

    /// The superuser's URL of the database the services use (the lab's EXPLAIN, probes and
    /// console); the services themselves connect as the service role (`Database::service_url`).
    pub fn database_url(&self) -> Option<String> {
        self.database.as_ref().map(|d| d.url(self.database_choice))
    }

    /// Stops the services, then PostgreSQL if this process owns it.
    pub async fn shutdown(mut self) {
        // Resumed (SIGCONT) by their throttles, paused instances can act on SIGTERM.
        self.throttles.clear();
        // The workers first: they drain into the instances' dependencies, not the reverse.
        for w in &mut self.workers {
            w.stop(Duration::from_secs(5)).await;
        }
        for s in &mut self.services {
            s.stop(Duration::from_secs(5)).await;
        }
        self.dependency = None;
        self.cgroups.clear();
        if let Some(nginx) = self.nginx.take() {
            nginx.stop().await;
        }
        if let Some(redis) = self.redis.take() {
            redis.stop().await;
        }
        if let Some(db) = self.database.take() {
            db.shutdown().await;
        }
    }
}
