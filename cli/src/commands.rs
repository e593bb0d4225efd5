//! One function per `sdlab` lab subcommand (the consoles are in `consoles.rs`, the learner's
//! commands in `learn.rs`). Each returns the process exit code; errors carry
//! context saying what was attempted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sdlab_engine::catalog::parse_duration;
use sdlab_engine::check::{self, fmt_duration};
use sdlab_engine::home::LearnerProgress;
use sdlab_engine::learner::{self, SecondView};
use sdlab_engine::load::{self, LoadPlan, LoadTally, RunSummary};
use sdlab_engine::metrics::export::Exporter;
use sdlab_engine::metrics::{self, Sample, Targets};
use sdlab_engine::{CodeSource, DatabaseChoice, Lab, Scenario, UpOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::view;

pub(crate) fn lab() -> Result<Lab> {
    Lab::from_env().context("load the scenario catalog")
}

/// Resolves on Ctrl-C or SIGTERM: commands select on it so that an interrupted start drops
/// its half-built lab (every part is a guard) and a running load or check is cancelled and
/// its lab stopped, rather than leaving servers for the next start to clean up.
async fn interrupted() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `Lab::up` for `load` and `check`, abandoned on Ctrl-C or SIGTERM: dropping the half-done
/// start stops what it started (every part is a guard). `None` when interrupted (said so).
async fn up_unless_interrupted(
    lab: &Lab,
    scenario: &Scenario,
    code: CodeSource,
    database: DatabaseChoice,
) -> Option<Result<sdlab_engine::Running, sdlab_engine::LabError>> {
    let up = lab.up(
        scenario,
        UpOptions {
            code,
            database,
            progress: view::progress(),
        },
    );
    tokio::select! {
        up = up => Some(up),
        _ = interrupted() => {
            eprintln!("\nInterrupted while starting; stopped.");
            None
        }
    }
}

pub(crate) fn scenario(lab: &Lab, id: &str) -> Result<Scenario> {
    Ok(lab.scenario(id)?.clone())
}

pub async fn list() -> Result<ExitCode> {
    let lab = lab()?;
    let progress = LearnerProgress::load(&lab.home);
    for s in &lab.catalog.scenarios {
        let state = match progress.scenarios.get(&s.id) {
            Some(p) if p.passed => "passed",
            Some(p) if p.checks_run > 0 => "tried",
            _ => "",
        };
        println!(
            "{:<6} track {} {:<9} {:<28} ~{} min  {}",
            s.id,
            s.track,
            s.stage.as_str(),
            s.title,
            s.minutes,
            state
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn start(id: &str, fix: Option<String>) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    if let Some(state) = lab.live_state(&scenario) {
        if !state.services.is_empty() {
            bail!(
                "{} is already running (sdlab pid {}). Stop it first: sdlab stop {}",
                scenario.id,
                state.owner_pid,
                scenario.id
            );
        }
    }
    // Listen for SIGTERM before anything starts: a signal that arrives while starting, or
    // right after "ready", must stop the lab cleanly, not kill it with its servers running.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listen for SIGTERM")?;
    eprintln!("Starting {} — {}", scenario.id, scenario.title);
    // Your code on your database; an author's `--fix` on a scratch copy, leaving both alone.
    let (code, database) = match fix {
        Some(name) => (CodeSource::Fix(name), DatabaseChoice::Scratch),
        None => (CodeSource::Learner, DatabaseChoice::Learner),
    };
    let up = lab.up(
        &scenario,
        UpOptions {
            code,
            database,
            progress: view::progress(),
        },
    );
    let up = tokio::select! {
        up = up => up,
        // Dropping the half-done start stops what it started (every part is a guard).
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nInterrupted while starting; stopped.");
            return Ok(ExitCode::FAILURE);
        }
        _ = sigterm.recv() => {
            eprintln!("\nInterrupted while starting; stopped.");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut running = match up {
        Ok(r) => r,
        Err(e) => {
            eprintln!("\n{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // Where requests go: nginx when the topology has it, else the (first) instance.
    let url = running
        .load_targets()
        .into_iter()
        .next()
        .unwrap_or_default();
    println!("ready {} {url}", scenario.id);
    if running.services.len() > 1 {
        let urls: Vec<String> = (0..running.services.len())
            .filter_map(|i| running.service_url(i))
            .collect();
        eprintln!("Instances: {}", urls.join("  "));
    }
    eprintln!(
        "Your code: {}\nIn another terminal: sdlab load {id}   sdlab sql {id} \"...\"   sdlab check {id}\nCtrl-C (or sdlab stop {id}) stops the lab.",
        running.code.dir.display()
    );
    let _ = std::io::stdout().flush();

    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(metrics::collect(running.targets(), tx, cancel.clone()));
    // The same samples for Prometheus (`sdlab prometheus <id>` prints where).
    let exporter = match Exporter::start_recorded(&lab.home.run_dir(), &scenario.id).await {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("No Prometheus metrics for this lab: {e}");
            None
        }
    };
    let interactive = view::interactive();
    let mut crashed = false;
    let mut nginx_down = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            sample = rx.recv() => {
                let Some(sample) = sample else { break };
                if let Some(exporter) = &exporter {
                    exporter.publish(&sample);
                }
                for svc in &mut running.services {
                    if let (false, Some(status)) = (crashed, svc.exit_status()) {
                        crashed = true;
                        eprintln!(
                            "\nThe service (instance {}) exited ({status}). Its last log lines:\n{}\n\nThe database keeps running; fix the code and start again.",
                            svc.instance,
                            svc.logs(40)
                        );
                    }
                }
                if let Some(nginx) = running.nginx.as_mut() {
                    if let (false, Some(status)) = (nginx_down, nginx.exited()) {
                        nginx_down = true;
                        eprintln!(
                            "\nnginx exited ({status}); requests to {} fail until the lab restarts. Its error log:\n{}",
                            nginx.url(),
                            nginx.error_log(20)
                        );
                    }
                }
                let line = view::sample_text(&sample);
                if interactive {
                    eprint!("\r\x1b[2K{:>4}s  {line}", sample.at.as_secs());
                } else if sample.at.as_secs() % 5 == 0 {
                    eprintln!("{:>4}s  {line}", sample.at.as_secs());
                }
            }
        }
    }
    cancel.cancel();
    let _ = collector.await;
    eprintln!("\nStopping {}...", scenario.id);
    running.shutdown().await;
    eprintln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

pub async fn load(
    id: &str,
    rate: Option<f64>,
    duration: Option<&str>,
    profile_name: &str,
) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    let duration =
        match duration {
            Some(text) => Some(parse_duration(text).filter(|d| !d.is_zero()).with_context(
                || format!("--duration {text:?}: expected a duration such as 30s or 2m"),
            )?),
            None => None,
        };
    let profile = match scenario.load_request(profile_name, rate, duration) {
        Ok(profile) => profile.clone(),
        Err(why) => bail!("{why}"),
    };

    // Load the running lab's service, or bring one up for this run.
    let mut own = None;
    let (load_urls, targets) = match lab.live_state(&scenario).filter(|s| !s.services.is_empty()) {
        Some(state) => {
            eprintln!(
                "Loading the service of the running lab (sdlab pid {}).",
                state.owner_pid
            );
            let targets = Targets {
                services: state
                    .services
                    .iter()
                    .map(|s| (s.instance, s.port, s.pid))
                    .collect(),
                postgres: match (&state.postgres_url, &scenario.topology.postgres) {
                    (Some(url), Some(pg)) => {
                        Some((url.clone(), pg.database.clone(), state.postmaster_pid))
                    }
                    _ => None,
                },
                redis: state
                    .redis_url
                    .as_deref()
                    .and_then(sdlab_engine::redis_console::port_of),
                replica: state
                    .replica_url
                    .clone()
                    .map(|url| (url, state.replica_pid)),
            };
            let urls: Vec<String> = match &state.nginx_url {
                Some(url) => vec![url.clone()],
                None => state
                    .services
                    .iter()
                    .map(|s| format!("http://127.0.0.1:{}", s.port))
                    .collect(),
            };
            (urls, targets)
        }
        None => {
            eprintln!(
                "No lab is running for {}; starting one for this run.",
                scenario.id
            );
            let Some(up) = up_unless_interrupted(
                &lab,
                &scenario,
                CodeSource::Learner,
                DatabaseChoice::Learner,
            )
            .await
            else {
                return Ok(ExitCode::FAILURE);
            };
            let running = match up {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("\n{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let urls = running.load_targets();
            let targets = running.targets();
            own = Some(running);
            (urls, targets)
        }
    };
    if load_urls.len() > 1 {
        eprintln!(
            "No load balancer in front of the {} instances: requests go to each in turn (client-side round robin).",
            load_urls.len()
        );
    }
    let mut plan = profile.plan(load_urls, rate, duration);
    // Scenarios with logins: the users log in first, through the same targets.
    plan.sessions = sdlab_engine::load::prepare_sessions(
        scenario.sessions.as_ref(),
        &plan.targets,
        plan.timeout,
    )
    .await?;
    let total: Duration = plan.stages.iter().map(|s| s.duration).sum();
    eprintln!(
        "Load: {} for {:.0} s, mix {}",
        plan.stages
            .iter()
            .map(|s| match s.rate_from {
                Some(f) => format!("{f:.0}->{:.0} req/s", s.rate),
                None => format!("{:.0} req/s", s.rate),
            })
            .collect::<Vec<_>>()
            .join(" then "),
        total.as_secs_f64(),
        plan.mix
            .iter()
            .map(|t| format!("{} x{}", t.name, t.weight))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let tally = LoadTally::path(&lab.home.run_dir(), &scenario.id);
    let run = run_with_view(plan, targets, &tally).await;
    if let Some(running) = own {
        running.shutdown().await;
    }
    let (summary, seconds) = run?;
    print!("{}", summary_text(&summary));
    // The learner's service ran it: the window's history and overlays show it too.
    learner::record_load(&lab.home, &scenario.id, &summary, seconds)
        .context("record the load run")?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a load plan while printing one line a second (load stats + the scenario's signals);
/// returns its summary and seconds.
async fn run_with_view(
    plan: LoadPlan,
    targets: Targets,
    tally_path: &Path,
) -> Result<(RunSummary, Vec<SecondView>)> {
    let cancel = CancellationToken::new();
    let (sample_tx, mut sample_rx) = mpsc::unbounded_channel::<Sample>();
    let collector = tokio::spawn(metrics::collect(targets, sample_tx, cancel.clone()));
    let (tick_tx, mut tick_rx) = mpsc::unbounded_channel();
    let load_cancel = cancel.child_token();
    let stop = load_cancel.clone();
    let watcher = tokio::spawn(async move {
        interrupted().await;
        stop.cancel();
    });
    let run = tokio::spawn(load::run(plan, Some(tick_tx), load_cancel));
    let mut latest: Option<Sample> = None;
    let mut seconds = Vec::new();
    let mut tally = LoadTally::default();
    loop {
        tokio::select! {
            s = sample_rx.recv() => if let Some(s) = s { latest = Some(s) },
            t = tick_rx.recv() => match t {
                Some(t) => {
                    eprintln!("{}", view::second_line(&t, latest.as_ref()));
                    // For the lab's Prometheus exporter, in whichever process owns the lab.
                    tally.add(&t);
                    let _ = tally.write(tally_path);
                    seconds.push(SecondView::from(&t));
                }
                None => break,
            },
        }
    }
    let summary = run.await.context("the load task panicked")?;
    watcher.abort();
    cancel.cancel();
    let _ = collector.await;
    Ok((summary?, seconds))
}

fn summary_text(s: &RunSummary) -> String {
    let mut out = format!(
        "\nSummary: {} sent in {:.1} s, {} ok, {} failed ({:.1}%), {:.1} ok/s of {:.1} offered\n\
         latency  p50 {}  p90 {}  p95 {}  p99 {}  max {}\n",
        s.sent,
        s.duration.as_secs_f64(),
        s.ok,
        s.failed,
        s.error_rate * 100.0,
        s.achieved_rate,
        s.offered_rate,
        fmt_duration(s.latency.p50),
        fmt_duration(s.latency.p90),
        fmt_duration(s.latency.p95),
        fmt_duration(s.latency.p99),
        fmt_duration(s.latency.max),
    );
    for (name, t) in &s.per_template {
        out.push_str(&format!(
            "  {name:<14} sent {:>6}  failed {:>6}  p95 {:>9}  p99 {:>9}\n",
            t.sent,
            t.failed,
            fmt_duration(t.latency.p95),
            fmt_duration(t.latency.p99)
        ));
    }
    if !s.errors.is_empty() {
        out.push_str("errors:\n");
        for (kind, n) in &s.errors {
            out.push_str(&format!("  {kind:<20} {n}\n"));
        }
    }
    out
}

pub async fn check(
    id: &str,
    solution: bool,
    code: Option<PathBuf>,
    fix: Option<String>,
    no_load: bool,
) -> Result<ExitCode> {
    let lab = lab()?;
    let scenario = scenario(&lab, id)?;
    let (source, database) = match (solution, code) {
        (true, _) => (CodeSource::Solution, DatabaseChoice::Scratch),
        (false, None) if fix.is_some() => (
            CodeSource::Fix(fix.unwrap_or_default()),
            DatabaseChoice::Scratch,
        ),
        (false, Some(dir)) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--code {}", dir.display()))?;
            (CodeSource::Dir(dir), DatabaseChoice::Scratch)
        }
        // The learner's code too runs on a fresh copy of the seed with its own migrations,
        // never on the playground database: an index made by hand in the console, or a
        // migration deleted after it ran, does not count (the clean-database rule).
        (false, None) => (CodeSource::Learner, DatabaseChoice::Check),
    };
    eprintln!(
        "Checking {} on {} {}",
        source.label(),
        scenario.id,
        scenario.title
    );
    let Some(up) = up_unless_interrupted(&lab, &scenario, source.clone(), database).await else {
        return Ok(ExitCode::FAILURE);
    };
    let running = match up {
        Ok(r) => r,
        Err(e) => {
            eprintln!("\n{e}");
            println!(
                "FAIL: {} could not be started, so the check could not run.",
                source.label()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let profile = &scenario.check.profile;
    let load = if no_load {
        eprintln!("No check load (--no-load): judging only the lines that need none.");
        check::Load::Skip
    } else {
        eprintln!(
            "Check load: {} ({:.0} s, up to {:.0} req/s)",
            profile.description,
            profile.duration().as_secs_f64(),
            profile.target_rate()
        );
        check::Load::Run
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        let mut seconds = Vec::new();
        while let Some(t) = rx.recv().await {
            eprintln!("{}", view::second_line(&t, None));
            seconds.push(SecondView::from(&t));
        }
        seconds
    });
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let watcher = tokio::spawn(async move {
        interrupted().await;
        stop.cancel();
    });
    let result = check::run(&running, Some(tx), cancel.clone(), load).await;
    watcher.abort();
    let seconds = printer.await.unwrap_or_default();
    running.shutdown().await;
    if cancel.is_cancelled() {
        eprintln!("\nInterrupted; the check was stopped and so was its lab.");
        return Ok(ExitCode::FAILURE);
    }
    let mut report = result?;
    report.code = source.label();
    println!();
    print!("{}", check::render(&report));
    // Only a whole check of the learner's own code counts (and shows in the window's history).
    if matches!(source, CodeSource::Learner) && load == check::Load::Run {
        learner::record_check(&lab.home, &scenario.id, &report, seconds)
            .context("record the check")?;
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn stop(id: Option<&str>) -> Result<ExitCode> {
    let lab = lab()?;
    let targets: Vec<Scenario> = match id {
        Some(id) => vec![scenario(&lab, id)?],
        None => lab.catalog.scenarios.clone(),
    };
    let mut any = false;
    for s in &targets {
        if lab.stop(s).await? {
            println!("stopped {}", s.id);
            any = true;
        }
    }
    if !any {
        println!("nothing was running");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn serve(port: Option<u16>, allow_hosts: &[String]) -> Result<ExitCode> {
    serve_then(port, allow_hosts, None, |_, _| {
        eprintln!(
            "Open that address in a browser. Ctrl-C stops the lab (and any scenario it started)."
        );
    })
    .await
}

/// `sdlab serve`'s server, with `ready` run once it listens (given the page's address, with
/// the token in its fragment, and the port): `sdlab serve` says to open the address, `sdlab open`
/// opens it in the browser or says how to reach it. With `scenario`, the address opens the
/// page on that scenario (`&scenario=ID` in the fragment).
pub async fn serve_then(
    port: Option<u16>,
    allow_hosts: &[String],
    scenario: Option<&str>,
    ready: impl FnOnce(&str, u16),
) -> Result<ExitCode> {
    let lab = lab()?;
    // Loopback only: the API edits files and runs SQL, so it must not be reachable from
    // the network (Codespaces forwards the port itself).
    let listener = match port {
        Some(port) => match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                    .await
                    .context("bind a free port on 127.0.0.1")?;
                let other = listener
                    .local_addr()
                    .context("read the bound address")?
                    .port();
                eprintln!("Port {port} is in use; serving on port {other} instead.");
                listener
            }
            Err(e) => return Err(e).with_context(|| format!("bind 127.0.0.1:{port}")),
        },
        None => tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("bind a free port on 127.0.0.1")?,
    };
    let port = listener
        .local_addr()
        .context("read the bound address")?
        .port();
    let token = sdlab_engine::api::new_token();
    let url = crate::open::page_url(port, &token, scenario);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listen for SIGTERM")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm.recv() => {}
        }
    };
    let mut state =
        sdlab_engine::api::ApiState::new(lab, token, port).context("prepare the lab's API")?;
    for host in allow_hosts {
        // A proxy serves the page under its own name, over https (Codespaces) or http.
        state = state
            .allow_host(host.clone())
            .allow_origin(format!("https://{host}"))
            .allow_origin(format!("http://{host}"));
        eprintln!("Also accepting requests for Host {host} (a proxy in front of this port).");
    }
    // Announced once the API is ready to answer (the port already queues connections).
    println!("serving {url}");
    let _ = std::io::stdout().flush();
    ready(&url, port);
    sdlab_engine::api::serve_with(listener, state, shutdown)
        .await
        .context("serve the lab's API")?;
    eprintln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// `sdlab doctor`: what the lab needs, found or missing with the way to get it.
pub fn doctor() -> Result<ExitCode> {
    let lab = lab()?;
    let findings = sdlab_engine::doctor::check(&lab.home, &lab.sources);
    print!("{}", sdlab_engine::doctor::render(&findings));
    let blocking = sdlab_engine::doctor::blocking(&findings);
    if blocking.is_empty() {
        println!("Ready: every scenario can start.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{} thing(s) missing: no scenario can start until they are installed.",
            blocking.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// `sdlab stage-workspaces DIR` (packaging): every scenario's learner and solution workspace
/// as the lab generates them, so `cargo vendor` sees exactly the crates a learner will build.
pub fn stage_workspaces(dir: &std::path::Path) -> Result<ExitCode> {
    let lab = lab()?;
    let home = sdlab_engine::LabHome::at(dir);
    let mut manifests = std::collections::BTreeSet::new();
    for scenario in &lab.catalog.scenarios {
        for source in [CodeSource::Learner, CodeSource::Solution] {
            let code = sdlab_engine::workspace::prepare(&home, &lab.sources, scenario, &source)
                .with_context(|| format!("prepare {} of {}", source.label(), scenario.id))?;
            manifests.insert(code.workspace_root.join("Cargo.toml"));
        }
    }
    for manifest in manifests {
        println!("{}", manifest.display());
    }
    Ok(ExitCode::SUCCESS)
}
