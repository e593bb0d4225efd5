//! The consoles: `sdlab sql <id> [--replica]`, `sdlab replica <id> [--delay D]` and `sdlab
//! redis <id>`, each on the servers of the scenario's running lab (this terminal's or
//! another's: the run state names them).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sdlab_engine::progress::Progress;
use sdlab_engine::{sql as console, DatabaseChoice};

use crate::commands::{lab, scenario};

pub async fn sql(id: &str, query: &str, on_replica: bool) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    let quiet = Progress::new(|event| {
        if let sdlab_engine::progress::Event::Finished { step, took, note } = event {
            if took > Duration::from_secs(2) {
                eprintln!("[ok] {} ({:.1} s) {note}", step.label(), took.as_secs_f64());
            }
        }
    });
    if on_replica
        && scenario
            .topology
            .postgres
            .as_ref()
            .map_or(0, |p| p.replicas)
            == 0
    {
        bail!(
            "{} has no replica ([topology.postgres] replicas = 1)",
            scenario.id
        );
    }
    let db = lab.database(&scenario, &quiet).await?;
    let url = match on_replica {
        true => db.replica_url(DatabaseChoice::Learner),
        false => Some(db.url(DatabaseChoice::Learner)),
    };
    let result = match url {
        Some(url) => console::run(&url, query).await,
        None => {
            db.shutdown().await;
            bail!(
                "the running lab of {} has no replica: restart it (`sdlab stop {}`)",
                scenario.id,
                scenario.id
            );
        }
    };
    db.shutdown().await;
    match result {
        Ok(results) => {
            for r in &results {
                print!("{}", console::render(r));
            }
            if let Some(note) = console::schema_note(query) {
                eprintln!("note: {note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `sdlab replica <id> [--delay D]`: the running lab's replica, its delay changed first when
/// asked (a lab this or another terminal runs: the run state names the replica).
pub async fn replica(id: &str, delay: Option<&str>) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    if scenario
        .topology
        .postgres
        .as_ref()
        .map_or(0, |p| p.replicas)
        == 0
    {
        bail!(
            "{} has no replica ([topology.postgres] replicas = 1)",
            scenario.id
        );
    }
    let state = lab.live_state(&scenario);
    let (Some(primary), Some(replica)) = (
        state.as_ref().and_then(|s| s.postgres_url.clone()),
        state.as_ref().and_then(|s| s.replica_url.clone()),
    ) else {
        bail!(
            "{} is not running: start it (`sdlab start {}`), then change its replica",
            scenario.id,
            scenario.id
        );
    };
    if let Some(text) = delay {
        let delay = match text.trim() {
            "0" => Duration::ZERO,
            t => sdlab_engine::catalog::parse_duration(t)
                .with_context(|| format!("--delay {text:?}: a duration such as 2s or 500ms"))?,
        };
        sdlab_engine::lab::set_replica_delay(&replica, delay).await?;
        println!(
            "apply delay set to {} ms (until the lab restarts)",
            delay.as_millis()
        );
    }
    let s = sdlab_engine::metrics::replica_status(&primary, &replica)
        .await
        .context("read the replica's state")?;
    println!(
        "replica {}: lag {}, {} bytes behind, apply delay {} ms",
        s.state,
        s.replay_lag_seconds
            .map_or("-".to_string(), |l| format!("{l:.2} s")),
        s.lag_bytes.map_or("-".to_string(), |b| b.to_string()),
        s.apply_delay_ms.map_or("-".to_string(), |d| d.to_string()),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn redis(id: &str, command: &str) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    if scenario.topology.redis.is_none() {
        bail!("{} has no Redis in its topology", scenario.id);
    }
    let port = lab
        .live_state(&scenario)
        .and_then(|s| s.redis_url)
        .and_then(|url| sdlab_engine::redis_console::port_of(&url));
    let result = match port {
        Some(port) => sdlab_engine::redis_console::run(port, command).await,
        None => Err(sdlab_engine::redis_console::ConsoleError::NotRunning {
            scenario: scenario.id.clone(),
        }),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
