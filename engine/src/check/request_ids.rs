//! `[check.request_ids]`: the check load sends a unique ID in a header on every request
//! (`load::RequestIds`); afterwards this compares it with what came back in each answer, what
//! the instances logged during the load (`logview`), and, with `propagated`, what the stub
//! dependency received (`Dependency::trace_header`). [`summarize`] reduces the evidence to
//! [`IdObservations`]; the three `*_line` functions judge it. All pure.
//!
//! The logs rule: every answered request has *at least one* JSON line whose `request_id` is
//! its ID (a request that logs three lines is fine, one that logs none is not), and every line
//! that carries an ID of the load is JSON (a text line with an ID cannot be filtered on by a
//! log system). Requests without an answer (timeouts) are not judged: the service may still be
//! working on them when the lab reads the logs.

use std::collections::{HashMap, HashSet};

use super::evaluate::result;
use super::LineResult;
use crate::dependency::TracedCall;
use crate::load::{Echo, Tagged};
use crate::text::shorten;

/// What the load's IDs showed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdObservations {
    /// Requests that got an answer (the ones judged).
    pub answered: u64,
    /// Answers that carried their own ID back.
    pub echoed: u64,
    /// The first answer that did not, e.g. `sent sdlab-1a2b-17, got none`.
    pub first_bad_echo: Option<String>,
    /// Answered requests with at least one JSON log line carrying their ID.
    pub logged: u64,
    /// The first answered request without one.
    pub first_unlogged: Option<String>,
    /// Log lines of the load that carry one of its IDs but are not JSON.
    pub text_lines: u64,
    /// The first of them (shortened).
    pub first_text_line: Option<String>,
    /// The stub dependency's name, when it was traced.
    pub dependency: Option<String>,
    /// Its calls during the load.
    pub calls: u64,
    /// Calls that carried the ID of a request in flight at that moment.
    pub calls_carrying: u64,
    /// The first call that did not, and why.
    pub first_bad_call: Option<String>,
    /// Why the logs could not be read (then the logs line fails with it).
    pub logs_unreadable: Option<String>,
}

/// The stub dependency's calls during the load, for `propagated`.
#[derive(Debug, Clone, Copy)]
pub struct DependencyTrace<'a> {
    /// The dependency's name, for the label.
    pub name: &'a str,
    /// Only calls whose path starts with this are judged (`propagated_path`).
    pub path: Option<&'a str>,
    pub calls: &'a [TracedCall],
}

/// The evidence after a check's load: what the instances logged since `offsets` (their log
/// files' lengths before it), and with `propagated` the stub's traced calls.
pub(super) fn observe(
    running: &crate::lab::Running,
    ids: &crate::load::RequestIds,
    offsets: Vec<u64>,
    propagated: bool,
    path: Option<&str>,
) -> IdObservations {
    let calls = match running.dependency.as_ref() {
        Some(dep) if propagated => Some((dep.spec.name.clone(), dep.take_traced())),
        _ => None,
    };
    let mut lines = Vec::new();
    let mut unreadable = None;
    for (service, from) in running.services.iter().zip(offsets) {
        match read_appended(&service.log_path, from) {
            Ok(text) => lines.extend(text.lines().map(str::to_string)),
            Err(e) => {
                unreadable = Some(format!("{}: {e}", service.log_path.display()));
            }
        }
    }
    let mut obs = summarize(
        &format!("{}-", ids.prefix()),
        &ids.sent(),
        &lines,
        calls.as_ref().map(|(name, c)| DependencyTrace {
            name,
            path,
            calls: c,
        }),
    );
    obs.logs_unreadable = unreadable;
    obs
}

/// What was appended to a log file from byte `from` on (all of it when the file was started
/// afresh, i.e. is now shorter), at most 64 MiB.
fn read_appended(path: &std::path::Path, from: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = if len < from { 0 } else { from };
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(64 << 20).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reduces the evidence: `sent` (the load's requests with IDs), `log_lines` (what the
/// instances wrote during the load), `trace` (the stub's traced calls).
pub fn summarize(
    prefix: &str,
    sent: &[Tagged],
    log_lines: &[String],
    trace: Option<DependencyTrace<'_>>,
) -> IdObservations {
    let mut obs = IdObservations::default();
    let mut logged_ids: HashSet<String> = HashSet::new();
    for line in log_lines {
        if !line.contains(prefix) {
            continue;
        }
        let entry = crate::logview::parse(line);
        if entry.json {
            if let Some(id) = entry.request_id {
                logged_ids.insert(id);
            }
        } else {
            obs.text_lines += 1;
            if obs.first_text_line.is_none() {
                obs.first_text_line = Some(shorten(line, 160));
            }
        }
    }
    for t in sent.iter().filter(|t| t.answered_at.is_some()) {
        obs.answered += 1;
        match &t.echo {
            Echo::Same => obs.echoed += 1,
            other if obs.first_bad_echo.is_none() => {
                let got = match other {
                    Echo::Other(v) => format!("{:?}", shorten(v, 60)),
                    _ => "none".to_string(),
                };
                obs.first_bad_echo = Some(format!("sent {}, got {got}", t.id));
            }
            _ => {}
        }
        if logged_ids.contains(&t.id) {
            obs.logged += 1;
        } else if obs.first_unlogged.is_none() {
            obs.first_unlogged = Some(t.id.clone());
        }
    }
    if let Some(trace) = trace {
        obs.dependency = Some(trace.name.to_string());
        let windows: HashMap<&str, &Tagged> = sent.iter().map(|t| (t.id.as_str(), t)).collect();
        let judged = trace
            .calls
            .iter()
            .filter(|c| trace.path.is_none_or(|p| c.path.starts_with(p)));
        for call in judged {
            obs.calls += 1;
            let problem = match &call.value {
                None => Some("a call without the header".to_string()),
                Some(v) => match windows.get(v.as_str()) {
                    None => Some(format!("a call with {:?}, no request's ID", shorten(v, 60))),
                    Some(t)
                        if call.at < t.sent_at
                            || t.answered_at.is_some_and(|done| call.at > done) =>
                    {
                        Some(format!(
                            "a call with {v} when that request was not in flight"
                        ))
                    }
                    Some(_) => None,
                },
            };
            match problem {
                None => obs.calls_carrying += 1,
                Some(p) if obs.first_bad_call.is_none() => obs.first_bad_call = Some(p),
                Some(_) => {}
            }
        }
    }
    obs
}

fn not_measured(label: String, required: String, hint: &str) -> LineResult {
    result(label, "not measured".to_string(), required, false, hint)
}

/// "responses carry their request ID".
pub fn echoed_line(header: &str, hint: &str, obs: Option<&IdObservations>) -> LineResult {
    let label = "responses carry their request ID".to_string();
    let required = format!("every answer, in {header}");
    let Some(o) = obs else {
        return not_measured(label, required, hint);
    };
    let mut measured = format!("{} of {} echoed", o.echoed, o.answered);
    if let Some(first) = &o.first_bad_echo {
        measured.push_str(&format!(" (first: {first})"));
    }
    result(
        label,
        measured,
        required,
        o.answered > 0 && o.echoed == o.answered,
        hint,
    )
}

/// "JSON log lines per request ID".
pub fn logged_line(hint: &str, obs: Option<&IdObservations>) -> LineResult {
    let label = "JSON log lines per request ID".to_string();
    let required = "every request >= 1 JSON line with its request_id; no text line".to_string();
    let Some(o) = obs else {
        return not_measured(label, required, hint);
    };
    if let Some(why) = &o.logs_unreadable {
        return result(
            label,
            format!("logs not read: {why}"),
            required,
            false,
            hint,
        );
    }
    let mut measured = format!("{} of {} requests logged", o.logged, o.answered);
    if let Some(first) = &o.first_unlogged {
        measured.push_str(&format!(" (none for {first})"));
    }
    if o.text_lines > 0 {
        measured.push_str(&format!(
            "; {} text lines carry IDs, e.g. {}",
            o.text_lines,
            o.first_text_line.as_deref().unwrap_or_default()
        ));
    }
    result(
        label,
        measured,
        required,
        o.answered > 0 && o.logged == o.answered && o.text_lines == 0,
        hint,
    )
}

/// "calls to <dependency> carry the request ID".
pub fn propagated_line(
    header: &str,
    path: Option<&str>,
    hint: &str,
    obs: Option<&IdObservations>,
) -> LineResult {
    let name = obs
        .and_then(|o| o.dependency.clone())
        .unwrap_or_else(|| "the dependency".to_string());
    let label = format!("calls to {name} carry the request ID");
    let calls = match path {
        Some(p) => format!("call to {p}"),
        None => "call".to_string(),
    };
    let required = format!("every {calls}, in {header}, of a request in flight");
    let Some(o) = obs.filter(|o| o.dependency.is_some()) else {
        return not_measured(label, required, hint);
    };
    let mut measured = format!("{} of {} calls", o.calls_carrying, o.calls);
    if let Some(first) = &o.first_bad_call {
        measured.push_str(&format!(" (first: {first})"));
    }
    if o.calls == 0 {
        measured = match path {
            Some(p) => format!("no call to {name} {p} during the load"),
            None => format!("no call to {name} during the load"),
        };
    }
    result(
        label,
        measured,
        required,
        o.calls > 0 && o.calls_carrying == o.calls,
        hint,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn tagged(t0: Instant, n: u64, echo: Echo, answered: bool) -> Tagged {
        let sent_at = t0 + Duration::from_millis(10 * n);
        Tagged {
            id: format!("sdlab-ab-{n}"),
            sent_at,
            answered_at: answered.then_some(sent_at + Duration::from_millis(5)),
            echo: if answered { echo } else { Echo::NoAnswer },
        }
    }

    fn trace(calls: &[TracedCall]) -> DependencyTrace<'_> {
        DependencyTrace {
            name: "payments",
            path: None,
            calls,
        }
    }

    fn json_line(id: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-11-30T23:38:51.319144Z","level":"INFO","fields":{{"message":"request finished","request_id":"{id}"}},"target":"svc"}}"#
        )
    }

    #[test]
    fn a_service_that_echoes_and_logs_every_id_passes_both_lines() {
        let t0 = Instant::now();
        let sent: Vec<Tagged> = (1..=3).map(|n| tagged(t0, n, Echo::Same, true)).collect();
        // Request 2 logs three lines (fine), request 4 timed out (not judged), and older runs'
        // lines and unrelated text lines are ignored.
        let mut logs: Vec<String> = ["sdlab-ab-1", "sdlab-ab-2", "sdlab-ab-2", "sdlab-ab-3"]
            .iter()
            .map(|id| json_line(id))
            .collect();
        logs.push("2026-11-30T23:38:51Z  INFO svc: listening on 127.0.0.1:4000".into());
        logs.push(json_line("sdlab-zz-9"));
        let mut all = sent.clone();
        all.push(tagged(t0, 4, Echo::Same, false));
        let obs = summarize("sdlab-ab-", &all, &logs, None);
        assert_eq!((obs.answered, obs.echoed, obs.logged), (3, 3, 3));
        assert!(echoed_line("X-Request-Id", "h", Some(&obs)).passed);
        let logged = logged_line("h", Some(&obs));
        assert!(logged.passed, "{logged:?}");
        assert_eq!(logged.measured, "3 of 3 requests logged");
    }

    #[test]
    fn a_missing_or_different_echo_fails_and_shows_the_first() {
        let t0 = Instant::now();
        let sent = vec![
            tagged(t0, 1, Echo::Same, true),
            tagged(t0, 2, Echo::Missing, true),
            tagged(t0, 3, Echo::Other("abc".into()), true),
        ];
        let obs = summarize("sdlab-ab-", &sent, &[], None);
        let line = echoed_line(
            "X-Request-Id",
            "Does every answer carry it back?",
            Some(&obs),
        );
        assert!(!line.passed);
        assert_eq!(
            line.measured,
            "1 of 3 echoed (first: sent sdlab-ab-2, got none)"
        );
        assert_eq!(
            line.hint.as_deref(),
            Some("Does every answer carry it back?")
        );
        let only_other = summarize("sdlab-ab-", &sent[2..], &[], None);
        assert!(echoed_line("X-Request-Id", "h", Some(&only_other))
            .measured
            .contains(r#"got "abc""#));
    }

    #[test]
    fn a_request_without_a_json_line_or_with_a_text_line_fails_the_logs_line() {
        let t0 = Instant::now();
        let sent: Vec<Tagged> = (1..=2).map(|n| tagged(t0, n, Echo::Same, true)).collect();
        let unlogged = summarize("sdlab-ab-", &sent, &[json_line("sdlab-ab-1")], None);
        let line = logged_line("h", Some(&unlogged));
        assert!(!line.passed);
        assert_eq!(
            line.measured,
            "1 of 2 requests logged (none for sdlab-ab-2)"
        );
        // Every request has its JSON line, but one request also logs a text line.
        let logs = vec![
            json_line("sdlab-ab-1"),
            json_line("sdlab-ab-2"),
            "[instance 1] 2026-11-30T23:38:51Z  WARN svc: slow request_id=sdlab-ab-2".to_string(),
        ];
        let mixed = summarize("sdlab-ab-", &sent, &logs, None);
        let line = logged_line("h", Some(&mixed));
        assert!(!line.passed, "{line:?}");
        assert!(
            line.measured.contains("1 text lines carry IDs"),
            "{}",
            line.measured
        );
        // A JSON line that only mentions the ID in its message does not count.
        let in_message = r#"{"level":"INFO","message":"done sdlab-ab-1"}"#.to_string();
        let loose = summarize("sdlab-ab-", &sent[..1], &[in_message], None);
        assert!(!logged_line("h", Some(&loose)).passed);
    }

    #[test]
    fn dependency_calls_must_carry_the_id_of_a_request_in_flight() {
        let t0 = Instant::now();
        let sent: Vec<Tagged> = (1..=2).map(|n| tagged(t0, n, Echo::Same, true)).collect();
        let call = |ms: u64, value: Option<&str>| TracedCall {
            at: t0 + Duration::from_millis(ms),
            path: "/authorize".to_string(),
            value: value.map(str::to_string),
        };
        // Request 1 is in flight from 10 to 15 ms, request 2 from 20 to 25 ms.
        let good = [call(12, Some("sdlab-ab-1")), call(21, Some("sdlab-ab-2"))];
        let obs = summarize("sdlab-ab-", &sent, &[], Some(trace(&good)));
        let line = propagated_line("X-Request-Id", None, "h", Some(&obs));
        assert!(line.passed, "{line:?}");
        assert_eq!(line.label, "calls to payments carry the request ID");
        for (bad, why) in [
            (call(12, None), "a call without the header"),
            (
                call(12, Some("abc")),
                r#"a call with "abc", no request's ID"#,
            ),
            (
                call(21, Some("sdlab-ab-1")),
                "a call with sdlab-ab-1 when that request was not in flight",
            ),
        ] {
            let calls = [good[0].clone(), bad];
            let obs = summarize("sdlab-ab-", &sent, &[], Some(trace(&calls)));
            let line = propagated_line("X-Request-Id", None, "h", Some(&obs));
            assert!(!line.passed);
            assert_eq!(line.measured, format!("1 of 2 calls (first: {why})"));
        }
        // A background task's calls (another path) are not judged with `propagated_path`.
        let mut task = call(30, None);
        task.path = "/capture".to_string();
        let calls = [good[0].clone(), good[1].clone(), task];
        let all = summarize("sdlab-ab-", &sent, &[], Some(trace(&calls)));
        assert!(!propagated_line("X-Request-Id", None, "h", Some(&all)).passed);
        let only = DependencyTrace {
            path: Some("/authorize"),
            ..trace(&calls)
        };
        let requests = summarize("sdlab-ab-", &sent, &[], Some(only));
        let line = propagated_line("X-Request-Id", Some("/authorize"), "h", Some(&requests));
        assert!(line.passed, "{line:?}");
        assert_eq!(line.measured, "2 of 2 calls");
        assert_eq!(
            line.required,
            "every call to /authorize, in X-Request-Id, of a request in flight"
        );
        let none = summarize("sdlab-ab-", &sent, &[], Some(trace(&[])));
        let line = propagated_line("X-Request-Id", None, "h", Some(&none));
        assert!(!line.passed);
        assert_eq!(line.measured, "no call to payments during the load");
    }

    #[test]
    fn a_load_without_answers_passes_nothing() {
        let obs = summarize("sdlab-ab-", &[], &[], None);
        assert!(!echoed_line("X-Request-Id", "h", Some(&obs)).passed);
        assert!(!logged_line("h", Some(&obs)).passed);
        assert!(!echoed_line("X-Request-Id", "h", None).passed);
    }
}
