//! Recording a finished run of the learner's code, from the terminal or the window alike: a
//! check counts in `progress.json` (checks run, passed once) and, like a load run, is added
//! to the history with its figures and seconds, where the window's overlays and observation
//! questions read it. Checks of the solution or of another folder are not the learner's and
//! are not recorded; a cancelled check judged a partial run and is not recorded either (the
//! callers do not call these for them).

use super::{history, save, LearnerError};
use crate::api::{RunRecord, SecondView, SummaryView};
use crate::check::CheckReport;
use crate::home::{LabHome, LearnerProgress};
use crate::load::RunSummary;

/// Records a finished check of the learner's code on `scenario` with its `seconds`.
pub fn record_check(
    home: &LabHome,
    scenario: &str,
    report: &CheckReport,
    seconds: Vec<SecondView>,
) -> Result<(), LearnerError> {
    let mut progress = LearnerProgress::load(home);
    let entry = progress.scenario(scenario);
    entry.checks_run += 1;
    entry.passed |= report.passed;
    save(home, &progress)?;
    match &report.summary {
        Some(summary) => add(
            home,
            scenario,
            "check",
            Some(report.passed),
            summary,
            seconds,
        ),
        // A check whose load never ran has no figures to compare.
        None => Ok(()),
    }
}

/// Records a finished load run on the learner's service of `scenario` with its `seconds`.
pub fn record_load(
    home: &LabHome,
    scenario: &str,
    summary: &RunSummary,
    seconds: Vec<SecondView>,
) -> Result<(), LearnerError> {
    add(home, scenario, "load", None, summary, seconds)
}

fn add(
    home: &LabHome,
    scenario: &str,
    kind: &str,
    passed: Option<bool>,
    summary: &RunSummary,
    seconds: Vec<SecondView>,
) -> Result<(), LearnerError> {
    let run = RunRecord {
        kind: kind.to_string(),
        finished_at: now_unix(),
        passed,
        summary: Some(SummaryView::from(summary)),
        seconds,
    };
    history::record(home, scenario, run).map_err(|source| LearnerError::Io {
        what: "save",
        path: history::path(home, scenario),
        source,
    })
}

/// Seconds since the Unix epoch, for `RunRecord::finished_at`.
fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
