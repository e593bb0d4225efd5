//! Cleaning up after a lab process that is gone (its services, nginx, PostgreSQL and its
//! replica, cgroups),
//! and `stop`: asking the live one to stop.

use std::time::{Duration, Instant};

use super::{Lab, LabError};
use crate::catalog::Scenario;
use crate::process::{self, RunState};

impl Lab {
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
            // `nginx-<id>-<pid>`, or `nginx-<id>-<pid>-check` for a check lab's.
            let Some(owner) = name
                .strip_prefix(&start)
                .and_then(|p| p.split('-').next())
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
        // The replica before its primary; both before the CPU groups they may be in.
        if let Some(pid) =
            sdlab_embedded_postgres::stop_stale(&super::replica::replica_dir(self, scenario))?
        {
            stopped.push(format!("PostgreSQL replica (pid {pid})"));
        }
        if let Some(pid) = sdlab_embedded_postgres::stop_stale(&self.home.cluster_dir(scenario))? {
            stopped.push(format!("PostgreSQL (pid {pid})"));
        }
        let postgres_cpus = scenario
            .topology
            .postgres
            .as_ref()
            .is_some_and(|p| p.cpus.is_some() || p.replica_cpus.is_some());
        if scenario.topology.cpus_per_instance.is_some() || postgres_cpus {
            let removed = crate::cgroup::detect().clean_stale(&scenario.id);
            if removed > 0 {
                stopped.push(format!("{removed} cgroup(s)"));
            }
        }
        Ok(stopped)
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
