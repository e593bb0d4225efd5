//! `sdlab prebuild [ID...]`: compiles every scenario's service (or the ones named) before its
//! first start, with a progress bar: what install.sh and the Codespaces configurations run so
//! that a learner's first `sdlab start` only seeds its database. The work is the engine's
//! (`Lab::prebuild`); this file draws it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::commands;

pub async fn prebuild(ids: &[String]) -> Result<ExitCode> {
    let lab = commands::lab()?;
    let scenarios = if ids.is_empty() {
        lab.catalog.scenarios.clone()
    } else {
        ids.iter()
            .map(|id| commands::scenario(&lab, id))
            .collect::<Result<Vec<_>>>()?
    };
    let bar = bar(scenarios.len() as u64);
    let started = Instant::now();
    let mut failed = Vec::new();
    for scenario in &scenarios {
        let what = format!("{} {}", scenario.id, scenario.title);
        show(&bar, format!("compiling {what}"));
        match lab.prebuild(scenario).await {
            Ok(built) => {
                let done = if built.compiled {
                    "compiled"
                } else {
                    "up to date"
                };
                say(&bar, format!("✔ {what}: {done} ({})", secs(built.took)));
            }
            Err(e) => {
                say(&bar, format!("✘ {what}: {e}"));
                failed.push(scenario.id.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if failed.is_empty() {
        eprintln!(
            "Every service is compiled ({} scenario(s) in {}): a first start now only seeds its \
             database.",
            scenarios.len(),
            secs(started.elapsed())
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "Not compiled: {} (the lab still works: their first start compiles them, and shows \
             why not).",
            failed.join(", ")
        );
        Ok(ExitCode::from(1))
    }
}

fn secs(took: Duration) -> String {
    format!("{:.1} s", took.as_secs_f64())
}

/// A bar on a terminal; plain lines otherwise (install logs, CI).
fn bar(len: u64) -> ProgressBar {
    if !crate::view::interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("[{bar:24}] {pos}/{len} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show(bar: &ProgressBar, msg: String) {
    if bar.is_hidden() {
        eprintln!("[..] {msg}");
    } else {
        bar.set_message(msg);
    }
}

fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
