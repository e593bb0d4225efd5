//! `sdlab`: System Design Lab on the command line. Each subcommand is a thin layer over
//! `sdlab_engine`; this file parses arguments and dispatches, `commands` holds one function
//! per subcommand, `open` what `sdlab` alone does, `view` draws progress and live numbers
//! (bars on a terminal, plain lines otherwise).

mod commands;
mod consoles;
mod learn;
mod logs;
mod observe;
mod open;
mod prebuild;
mod scaffold;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sdlab",
    version,
    about = "System Design Lab: fix real broken services under real load."
)]
struct Cli {
    /// None: open the lab (as `sdlab open`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the lab (also `sdlab` alone): the desktop window when installed, else the web UI
    /// in your browser, else (no display, e.g. SSH) its address and how to reach it.
    Open {
        /// Open on this scenario, e.g. t1-05.
        id: Option<String>,
    },
    /// List the scenarios.
    List,
    /// Start a scenario (database, your service) and watch it live until Ctrl-C.
    Start {
        /// Scenario id, e.g. t1-01.
        id: String,
        /// Run one of the scenario's `fixes/<NAME>.toml` instead of your code, on a scratch
        /// copy of the database (for authors and benchmarks: `bench/t1-01-feed.sh`).
        #[arg(long, value_name = "NAME")]
        fix: Option<String>,
    },
    /// Put load on a scenario's service (the running one, or one started for the run).
    Load {
        id: String,
        /// Requests per second (default: the scenario's explore profile).
        #[arg(long)]
        rate: Option<f64>,
        /// How long, e.g. 30s or 2m (default: the profile's duration).
        #[arg(long)]
        duration: Option<String>,
        /// Which load profile of scenario.toml.
        #[arg(long, default_value = "explore")]
        profile: String,
    },
    /// Check your fix against the scenario's SLOs. Exit code 0: pass, 1: fail.
    Check {
        id: String,
        /// Check the scenario's solution (in a scratch workspace and database) instead of your code.
        #[arg(long, conflicts_with = "code")]
        solution: bool,
        /// Check the service in this folder (in a scratch workspace and database).
        #[arg(long, value_name = "DIR", conflicts_with = "fix")]
        code: Option<PathBuf>,
        /// Check one of the scenario's `fixes/<NAME>.toml` (its broken service, solution, or a
        /// correct or wrong fix), in a scratch workspace and database (for authors and tests).
        #[arg(long, value_name = "NAME", conflicts_with = "solution")]
        fix: Option<String>,
        /// Skip the check load: judge only what needs none (right answers, query plans, pool
        /// settings, exported metrics), in seconds. Never a pass, and not recorded.
        #[arg(long)]
        no_load: bool,
    },
    /// Run SQL on the scenario's database and print the rows (EXPLAIN ANALYZE works).
    Sql {
        id: String,
        query: String,
        /// On the streaming replica (read-only: it refuses writes, and says so).
        #[arg(long)]
        replica: bool,
    },
    /// The running scenario's streaming replica: its state, lag and apply delay; `--delay`
    /// changes the delay while it runs (e.g. `sdlab replica t1-08 --delay 2s`).
    Replica {
        id: String,
        /// The new `recovery_min_apply_delay`, e.g. `2s`, `500ms`, `0`.
        #[arg(long, value_name = "DURATION")]
        delay: Option<String>,
    },
    /// Show the services' logs, JSON lines readably; `--request ID` only that request's lines.
    Logs {
        id: String,
        /// Only this instance's log (default: every instance's, merged by time).
        #[arg(long, value_name = "N")]
        instance: Option<u32>,
        /// How many lines (the last ones).
        #[arg(long, default_value_t = 100)]
        lines: usize,
        /// Only the lines whose `request_id` is ID (JSON lines; see docs/AUTHORING.md).
        #[arg(long, value_name = "ID")]
        request: Option<String>,
        /// Keep printing new lines until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
        /// The lines as written, not reformatted.
        #[arg(long)]
        raw: bool,
    },
    /// Send one command to the running scenario's Redis, e.g. `sdlab redis t1-05 "INFO stats"`.
    Redis { id: String, command: String },
    /// Show the next hint (gentle first, more explicit each time).
    Hint { id: String },
    /// Show the annotated solution (asks first if you have not run a check yet).
    Solution {
        id: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Restore the broken code and the seeded database; your version is backed up first.
    Reset {
        id: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Stop a running scenario (all of them when no id is given).
    Stop { id: Option<String> },
    /// Serve the lab's HTTP API (and web UI) on 127.0.0.1 until Ctrl-C.
    Serve {
        /// Port to listen on (default: a free one; if taken, another is picked).
        #[arg(long)]
        port: Option<u16>,
        /// Also accept requests for this Host (and pages from https://HOST), e.g. a
        /// Codespaces forwarded port's name; repeatable. Still listens on 127.0.0.1 only.
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
    },
    /// Compile every scenario's service now (or the ones named), so a first start only seeds
    /// its database; install.sh runs it. Your edits are never touched.
    Prebuild {
        /// Scenario ids, e.g. t1-01 (default: all).
        ids: Vec<String>,
    },
    /// Check this machine for what the lab needs (cargo, PostgreSQL, nginx, a writable data
    /// folder, vendored crates) and say how to get what is missing.
    Doctor,
    /// For scenario authors: create scenarios/<ID>-<slug>/ from a template (a small real
    /// lesson that lints and passes its golden test), to grow into a new scenario.
    New {
        /// The new scenario's id, e.g. t1-05.
        id: String,
        /// Its title; the folder's name is the id and the title in lower-case words.
        #[arg(long)]
        title: String,
        /// Its track (default: the id's, t2-05 -> 2; 1 if that is not a track).
        #[arg(long)]
        track: Option<u8>,
        /// crawling, walking, running or sprinting (default: crawling).
        #[arg(long)]
        stage: Option<String>,
    },
    /// For scenario authors: check every scenario folder against the contract
    /// (docs/AUTHORING.md). Exit code 0: clean, 1: problems (listed).
    Lint {
        /// The scenarios folder to lint (default: the lab's own).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// For scenario authors: write `.devcontainer/<id>/devcontainer.json` (a GitHub
    /// Codespaces configuration) for every scenario of the catalog, and remove those of
    /// scenarios that are gone. `--check` changes nothing: exit code 1 and the files that
    /// differ.
    Devcontainers {
        /// Only compare the committed files with what the catalog generates.
        #[arg(long)]
        check: bool,
    },
    /// For scenario authors: write `dashboards/<id>/dashboard.json` (Grafana) and
    /// `dashboards/<id>/prometheus.yml` for every scenario, from the same chart definitions as
    /// the window's, and remove those of scenarios that are gone. `--check` changes nothing:
    /// exit code 1 and the files that differ.
    Dashboards {
        /// Only compare the committed files with what the catalog generates.
        #[arg(long)]
        check: bool,
    },
    /// Print a Prometheus configuration (prometheus.yml) for the running scenario, with its
    /// real ports: the lab's own series and each instance's /metrics.
    Prometheus { id: String },
    /// Packaging: write every scenario's service and solution workspace, exactly as the lab
    /// generates them, under DIR and print their manifests (for `cargo vendor`).
    #[command(hide = true)]
    StageWorkspaces { dir: std::path::PathBuf },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SDLAB_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,sqlx=error,reqwest_retry=error")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Open { id: None }) {
            Command::Open { id } => open::open(id.as_deref()).await,
            Command::List => commands::list().await,
            Command::Start { id, fix } => commands::start(&id, fix).await,
            Command::Load {
                id,
                rate,
                duration,
                profile,
            } => commands::load(&id, rate, duration.as_deref(), &profile).await,
            Command::Check {
                id,
                solution,
                code,
                fix,
                no_load,
            } => commands::check(&id, solution, code, fix, no_load).await,
            Command::Sql { id, query, replica } => consoles::sql(&id, &query, replica).await,
            Command::Replica { id, delay } => consoles::replica(&id, delay.as_deref()).await,
            Command::Logs {
                id,
                instance,
                lines,
                request,
                follow,
                raw,
            } => {
                logs::logs(logs::LogsArgs {
                    id,
                    instance,
                    lines,
                    request,
                    follow,
                    raw,
                })
                .await
            }
            Command::Redis { id, command } => consoles::redis(&id, &command).await,
            Command::Hint { id } => learn::hint(&id).await,
            Command::Solution { id, yes } => learn::solution(&id, yes).await,
            Command::Reset { id, yes } => learn::reset(&id, yes).await,
            Command::Stop { id } => commands::stop(id.as_deref()).await,
            Command::Serve { port, allow_hosts } => commands::serve(port, &allow_hosts).await,
            Command::Prebuild { ids } => prebuild::prebuild(&ids).await,
            Command::Doctor => commands::doctor(),
            Command::New {
                id,
                title,
                track,
                stage,
            } => scaffold::new(&id, &title, track, stage),
            Command::Lint { root } => scaffold::lint(root),
            Command::Devcontainers { check } => scaffold::devcontainers(check),
            Command::Dashboards { check } => observe::dashboards(check),
            Command::Prometheus { id } => observe::prometheus(&id),
            Command::StageWorkspaces { dir } => commands::stage_workspaces(&dir),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
