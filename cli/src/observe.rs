//! `sdlab dashboards [--check]` (the Grafana dashboards and Prometheus configs in
//! `dashboards/`, generated from the engine's one chart definition) and `sdlab prometheus
//! <id>` (the running lab's configuration, with its real ports).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use sdlab_engine::dashboards::{generate, prometheus};
use sdlab_engine::{Catalog, Sources};

use crate::commands::{lab, scenario};

pub fn dashboards(check: bool) -> Result<ExitCode> {
    let sources = Sources::from_env();
    let catalog = Catalog::load(&sources.scenarios_dir()).context("cannot load the catalog")?;
    let dir = sources.root.join("dashboards");
    if check {
        let problems = generate::check(&catalog, &dir)?;
        for p in &problems {
            println!("{p}");
        }
        if problems.is_empty() {
            println!(
                "{}: a dashboard and a Prometheus config per scenario ({}), as generated",
                dir.display(),
                catalog.scenarios.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        return Ok(ExitCode::FAILURE);
    }
    let changed = generate::write(&catalog, &dir)?;
    for path in &changed {
        println!("  {}", path.display());
    }
    println!(
        "{}: a dashboard and a Prometheus config per scenario ({}), {} file{} changed",
        dir.display(),
        catalog.scenarios.len(),
        changed.len(),
        if changed.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn prometheus(id: &str) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    let Some(state) = lab.live_state(&scenario) else {
        bail!(
            "{id} is not running: start it (sdlab start {id}, or Start in the window), then run this again; every start picks new ports"
        );
    };
    let Some(lab_port) = state.metrics_port else {
        bail!(
            "the lab running {id} (sdlab pid {}) has not published its metrics port yet (still starting, or an older sdlab): try again in a moment",
            state.owner_pid
        );
    };
    let ports = prometheus::Ports {
        lab: lab_port,
        instances: state
            .services
            .iter()
            .map(|s| (s.instance, s.port))
            .collect(),
    };
    print!("{}", prometheus::config(&scenario, Some(&ports)));
    Ok(ExitCode::SUCCESS)
}
