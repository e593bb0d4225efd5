//! The check table as terminal text.

use super::{CheckReport, LineResult};

/// The check table as plain text: line, measured, required, result; then the hints of the
/// failing lines and the verdict.
pub fn render(report: &CheckReport) -> String {
    let headers = ["check", "measured", "required", "result"];
    let rows: Vec<[String; 4]> = report
        .lines
        .iter()
        .map(|l| {
            [
                l.label.clone(),
                l.measured.clone(),
                l.required.clone(),
                match (l.passed, l.skipped) {
                    (true, _) => "PASS",
                    (false, true) => "SKIP",
                    (false, false) => "FAIL",
                }
                .to_string(),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            if i < 3 {
                s.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(headers));
    out.push('\n');
    out.push_str(&line(
        widths.map(|w| "─".repeat(w)).each_ref().map(String::as_str),
    ));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
        out.push('\n');
    }
    let failed: Vec<&LineResult> = report.lines.iter().filter(|l| !l.passed).collect();
    if !failed.is_empty() {
        out.push_str("\nHints:\n");
        for l in &failed {
            if let Some(h) = &l.hint {
                out.push_str(&format!("  - {}: {h}\n", l.label));
            }
        }
    }
    if !report.log_errors.is_empty() && !report.passed {
        out.push_str("\nFrom the service's log:\n");
        for l in &report.log_errors {
            out.push_str(&format!("  {l}\n"));
        }
    }
    if let Some((n, took)) = report.answers_judged {
        out.push_str(&format!(
            "\nRight answers: {n} requests judged after the load in {:.1} s.\n",
            took.as_secs_f64()
        ));
    }
    let passed = report.lines.len() - failed.len();
    let skipped = report.lines.iter().filter(|l| l.skipped).count();
    let verdict = if report.passed {
        "PASS"
    } else if skipped > 0 && failed.len() == skipped {
        "NOT JUDGED"
    } else {
        "FAIL"
    };
    out.push_str(&format!(
        "\n{verdict}: {passed} of {} lines pass ({}, scenario {}).\n",
        report.lines.len(),
        report.code,
        report.scenario
    ));
    if skipped > 0 {
        out.push_str(&format!(
            "{skipped} line(s) need the check load and were skipped (--no-load): run the full check for a verdict.\n"
        ));
    }
    out
}
