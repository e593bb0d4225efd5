//! Judging: each `CheckLine` against the `Observations` into a `LineResult`. Pure (no I/O, no
//! clock), so the same observations always give the same table.

use super::{fmt_duration, KindAnswers, LineResult, Observations};
use crate::catalog::{CheckLine, SloMetric};

/// Judges each line against the observations.
pub fn evaluate(lines: &[CheckLine], obs: &Observations) -> Vec<LineResult> {
    lines.iter().map(|line| evaluate_line(line, obs)).collect()
}

fn evaluate_line(line: &CheckLine, obs: &Observations) -> LineResult {
    if !obs.load_ran && line.needs_load() {
        // Judged as if it had run, for the label and the requirement; then marked skipped.
        let mut judged = evaluate_line(
            line,
            &Observations {
                load_ran: true,
                ..obs.clone()
            },
        );
        judged.measured = "not measured (no load)".to_string();
        judged.passed = false;
        judged.hint = None;
        judged.skipped = true;
        return judged;
    }
    match line {
        CheckLine::Slo {
            metric,
            request,
            hint,
        } => slo(metric, request.as_deref(), hint, obs),
        CheckLine::Plan {
            name,
            uses_index_on,
            no_sort,
            max_buffers,
            hint,
            ..
        } => plan(
            name,
            uses_index_on.as_deref(),
            *no_sort,
            *max_buffers,
            hint,
            obs,
        ),
        CheckLine::Connections {
            max_per_request,
            hint,
        } => super::pool::connections(*max_per_request, hint, obs),
        CheckLine::MetricsPresent { names, hint } => super::pool::metrics_present(names, hint, obs),
        CheckLine::PoolBudget { reserved, hint } => super::pool::pool_budget(*reserved, hint, obs),
        CheckLine::AcquireTimeout {
            client_timeout,
            hint,
        } => super::pool::acquire_timeout(*client_timeout, hint, obs),
        CheckLine::RefusedConnections { max, hint } => {
            super::pool::refused_connections(*max, hint, obs)
        }
        CheckLine::InstancesUp { hint } => super::instances::instances_up(hint, obs),
        CheckLine::Balance {
            min_instances,
            tolerance,
            hint,
        } => super::instances::balance(&obs.served, *min_instances, *tolerance, hint),
        CheckLine::Answers => answers(obs),
        CheckLine::Served { min_ratio, hint } => super::instances::served(*min_ratio, hint, obs),
        CheckLine::DependencyCalls { max_per_key, hint } => {
            super::instances::dependency_calls(*max_per_key, hint, obs)
        }
        CheckLine::CacheHits { min_ratio, hint } => {
            super::cache::hits_line(obs.redis.as_ref(), *min_ratio, hint)
        }
        CheckLine::RejectedWrites { max, hint } => {
            super::cache::rejected_line(obs.redis.as_ref(), *max, hint)
        }
        CheckLine::CacheTtl { max, hint } => {
            super::cache::ttl_line(obs.key_expiries.as_ref(), *max, hint)
        }
        CheckLine::FreshReads { hint, .. } => super::fresh::line(obs.fresh_reads.as_ref(), hint),
        CheckLine::ReplicaReads { min_share, hint } => {
            super::replica::share_line(obs.replica_reads.as_ref(), *min_share, hint)
        }
        CheckLine::PrimaryReads {
            max_per_request,
            hint,
        } => super::replica::primary_line(
            obs.replica_reads.as_ref(),
            obs.overall.sent.saturating_sub(obs.overall.failed),
            *max_per_request,
            hint,
        ),
        CheckLine::Responses { status, max, hint } => {
            super::traffic::responses_line(*status, *max, hint, obs)
        }
        CheckLine::RateLimit {
            request,
            max_rate,
            hint,
        } => super::traffic::rate_limit_line(request, *max_rate, hint, obs),
        CheckLine::EdgeCache {
            request,
            route,
            min_ratio,
            hint,
        } => super::traffic::edge_cache_line(request, route, *min_ratio, hint, obs),
        CheckLine::RequestIdsEchoed { header, hint } => {
            super::request_ids::echoed_line(header, hint, obs.request_ids.as_ref())
        }
        CheckLine::RequestIdsLogged { hint, .. } => {
            super::request_ids::logged_line(hint, obs.request_ids.as_ref())
        }
        CheckLine::RequestIdsPropagated { header, path, hint } => {
            super::request_ids::propagated_line(
                header,
                path.as_deref(),
                hint,
                obs.request_ids.as_ref(),
            )
        }
        CheckLine::Drain { within, hint, .. } => {
            super::queue::drain_line(&obs.queue, *within, hint)
        }
        CheckLine::QueueDepth { key, max, hint } => {
            super::queue::depth_line(&obs.queue, key, *max, hint)
        }
        CheckLine::RouteMetrics {
            histogram,
            label,
            min_ratio,
            routes,
            hint,
        } => super::routes::route_metrics_line(
            histogram,
            label,
            *min_ratio,
            routes,
            hint,
            obs.route_counts.as_ref(),
            obs.overall.sent.saturating_sub(obs.overall.failed),
        ),
    }
}

/// Every verified answer right by its kind's oracle; the hint shows the first wrong one.
fn answers(obs: &Observations) -> LineResult {
    let label = "right answers".to_string();
    let required = "every answer right (oracle per request kind)".to_string();
    let kinds = match &obs.answers {
        Err(why) => {
            return LineResult {
                label,
                measured: "not verified".to_string(),
                required,
                passed: false,
                hint: Some(format!("The lab could not verify the answers: {why}")),
                skipped: false,
            }
        }
        Ok(kinds) => kinds,
    };
    let checked: u32 = kinds.values().map(|k| k.checked).sum();
    let wrong: Vec<(&String, &KindAnswers)> = kinds.iter().filter(|(_, k)| k.wrong > 0).collect();
    let unchecked: Vec<&String> = kinds
        .iter()
        .filter(|(_, k)| k.checked == 0)
        .map(|(n, _)| n)
        .collect();
    let passed = checked > 0 && wrong.is_empty() && unchecked.is_empty();
    let measured = if checked == 0 && kinds.is_empty() {
        "no answer verified".to_string()
    } else if wrong.is_empty() && unchecked.is_empty() {
        format!("{checked} of {checked} right ({} kinds)", kinds.len())
    } else if wrong.is_empty() {
        format!("no answer from {}", join(unchecked))
    } else {
        let parts: Vec<String> = wrong
            .iter()
            .map(|(n, k)| format!("{n} {} of {}", k.wrong, k.checked))
            .collect();
        format!("wrong: {}", parts.join(", "))
    };
    let hint = wrong
        .first()
        .and_then(|(name, k)| k.example.as_ref().map(|e| (name, e)))
        .map(|(name, e)| {
            let mut h = format!("{name}: {} answered {}", e.request, e.answer);
            if let Some(expected) = &e.expected {
                h.push_str(&format!("; right: {expected}"));
            }
            h.push_str(&format!(". {}", e.hint));
            h
        });
    LineResult {
        label,
        measured,
        required,
        passed,
        hint: (!passed).then(|| {
            hint.unwrap_or_else(|| {
                "No request of these kinds got an answer after the load: is the service up?"
                    .to_string()
            })
        }),
        skipped: false,
    }
}

fn join(names: Vec<&String>) -> String {
    names
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A judged line; the hint is kept only when it failed.
pub(super) fn result(
    label: String,
    measured: String,
    required: String,
    passed: bool,
    hint: &str,
) -> LineResult {
    LineResult {
        label,
        measured,
        required,
        passed,
        hint: (!passed).then(|| hint.to_string()),
        skipped: false,
    }
}

/// An SLO line: a latency percentile, the error rate or the achieved rate, of the whole run
/// or of one request of the mix.
fn slo(metric: &SloMetric, request: Option<&str>, hint: &str, obs: &Observations) -> LineResult {
    let (slice, scope) = match request {
        Some(name) => (
            obs.per_request.get(name).cloned().unwrap_or_default(),
            format!(" of {name}"),
        ),
        None => (obs.overall.clone(), String::new()),
    };
    match metric {
        SloMetric::Latency { percentile, max } => {
            let got = slice.percentile(*percentile);
            result(
                format!("{} latency{scope}", percentile.label()),
                fmt_duration(got),
                format!("<= {}", fmt_duration(*max)),
                slice.sent > 0 && got <= *max,
                hint,
            )
        }
        SloMetric::ErrorRate { max } => {
            let rate = slice.error_rate();
            let mut measured = format!("{:.1}% of {}", rate * 100.0, slice.sent);
            if request.is_none() && !obs.errors.is_empty() {
                let mut kinds: Vec<_> = obs.errors.iter().collect();
                kinds.sort_by(|a, b| b.1.cmp(a.1));
                let top: Vec<String> = kinds
                    .iter()
                    .take(3)
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect();
                measured.push_str(&format!(" ({})", top.join(", ")));
            }
            result(
                format!("error rate{scope}"),
                measured,
                format!("<= {:.1}%", max * 100.0),
                slice.sent > 0 && rate <= *max,
                hint,
            )
        }
        SloMetric::AchievedRate { min_ratio } => {
            let need = obs.offered_rate * min_ratio;
            result(
                "successful requests/s".to_string(),
                format!(
                    "{:.1}/s of {:.1}/s offered",
                    obs.achieved_rate, obs.offered_rate
                ),
                format!(">= {need:.1}/s"),
                obs.offered_rate > 0.0 && obs.achieved_rate >= need,
                hint,
            )
        }
    }
}

/// A plan line: how PostgreSQL runs the line's query (an index on a table, no sort, at most
/// so many buffers).
fn plan(
    name: &str,
    uses_index_on: Option<&str>,
    no_sort: bool,
    max_buffers: Option<u64>,
    hint: &str,
    obs: &Observations,
) -> LineResult {
    let mut required = Vec::new();
    if let Some(table) = uses_index_on {
        required.push(format!("index on {table}"));
    }
    if no_sort {
        required.push("no sort".to_string());
    }
    if let Some(max) = max_buffers {
        required.push(format!("<= {max} buffers"));
    }
    let required = required.join(", ");
    match obs.plans.get(name) {
        Some(Ok(facts)) => {
            let index_ok = uses_index_on
                .is_none_or(|t| facts.indexed.contains(t) && !facts.seq_scanned.contains(t));
            let buffers_ok = match (max_buffers, facts.buffers) {
                (Some(max), Some(got)) => got <= max,
                (Some(_), None) => false,
                (None, _) => true,
            };
            let passed = index_ok && buffers_ok && !(no_sort && facts.sorts);
            let measured = match facts.buffers {
                Some(b) if max_buffers.is_some() => {
                    format!("{} ({b} buffers)", facts.outline)
                }
                _ => facts.outline.clone(),
            };
            result(name.to_string(), measured, required, passed, hint)
        }
        Some(Err(e)) => result(
            name.to_string(),
            format!("no plan: {e}"),
            required,
            false,
            hint,
        ),
        None => result(
            name.to_string(),
            "not measured".to_string(),
            required,
            false,
            hint,
        ),
    }
}
