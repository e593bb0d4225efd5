//! Judging: each `CheckLine` against the `Observations` into a `LineResult`. Pure (no I/O, no
//! clock), so the same observations always give the same table.

use std::collections::BTreeSet;
use std::time::Duration;

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
        } => connections(*max_per_request, hint, obs),
        CheckLine::MetricsPresent { names, hint } => metrics_present(names, hint, obs),
        CheckLine::PoolBudget { reserved, hint } => pool_budget(*reserved, hint, obs),
        CheckLine::AcquireTimeout {
            client_timeout,
            hint,
        } => acquire_timeout(*client_timeout, hint, obs),
        CheckLine::RefusedConnections { max, hint } => refused_connections(*max, hint, obs),
        CheckLine::InstancesUp { hint } => instances_up(hint, obs),
        CheckLine::Balance {
            min_instances,
            tolerance,
            hint,
        } => balance(&obs.served, *min_instances, *tolerance, hint),
        CheckLine::Answers => answers(obs),
        CheckLine::Served { min_ratio, hint } => served(*min_ratio, hint, obs),
        CheckLine::DependencyCalls { max_per_key, hint } => {
            dependency_calls(*max_per_key, hint, obs)
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

/// The instances' own request counters against the answers the load got.
fn served(min_ratio: f64, hint: &str, obs: &Observations) -> LineResult {
    let answered = obs.overall.sent.saturating_sub(obs.overall.failed);
    let counted: Option<f64> = obs.served.iter().copied().sum();
    let (measured, passed) = match counted {
        // Above 100% when the instances also finished requests the client had given up on.
        Some(n) if answered > 0 => (
            format!(
                "{} served for {answered} answers ({})",
                n.round(),
                if n >= answered as f64 {
                    "all".to_string()
                } else {
                    format!("{:.0}%", 100.0 * n / answered as f64)
                }
            ),
            n >= min_ratio * answered as f64,
        ),
        Some(_) => ("no answers".to_string(), false),
        None => ("an instance's counter could not be read".to_string(), false),
    };
    result(
        "served by the instances".to_string(),
        measured,
        format!(">= {:.0}% of the answers", min_ratio * 100.0),
        passed,
        hint,
    )
}

/// The stub dependency's calls per key: e.g. no job charged twice.
fn dependency_calls(max_per_key: u64, hint: &str, obs: &Observations) -> LineResult {
    let Some(d) = &obs.dependency_calls else {
        return result(
            "calls per key".to_string(),
            "not counted".to_string(),
            format!("<= {max_per_key}"),
            false,
            hint,
        );
    };
    let most = d.most.as_ref().map_or(0, |(_, n)| *n);
    let measured = match &d.most {
        Some((key, n)) if *n > max_per_key => {
            format!(
                "{n} for {} {key} ({} calls, {} keys)",
                d.key, d.calls, d.keys
            )
        }
        _ => format!("at most {most} ({} calls, {} keys)", d.calls, d.keys),
    };
    result(
        format!("{} calls per {}", d.name, d.key),
        measured,
        format!("<= {max_per_key} per {}", d.key),
        most <= max_per_key,
        hint,
    )
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

/// New PostgreSQL sessions per request, per request kind: a handler without the pool opens
/// one per request. Judged on each kind's probe (`Observations::sessions_per_kind`), so a
/// pooled endpoint that makes up most of the mix cannot hide one that still connects; the
/// whole load's figure is shown alongside.
fn connections(max_per_request: f64, hint: &str, obs: &Observations) -> LineResult {
    let label = "new DB connections per request".to_string();
    let required = format!("<= {max_per_request:.2} for each kind");
    if obs.sessions_per_kind.is_empty() {
        return result(label, "not measured".to_string(), required, false, hint);
    }
    // Measured kinds, the most connections per request first; unmeasured ones fail.
    let mut kinds: Vec<(&str, Option<(f64, u64)>)> = obs
        .sessions_per_kind
        .iter()
        .map(|(name, m)| {
            let per = m
                .filter(|m| m.requests > 0)
                .map(|m| (m.sessions as f64 / m.requests as f64, m.requests));
            (name.as_str(), per)
        })
        .collect();
    kinds.sort_by(|a, b| {
        let key = |k: &Option<(f64, u64)>| k.map_or(f64::INFINITY, |(per, _)| per);
        key(&b.1).total_cmp(&key(&a.1))
    });
    let counts: Vec<u64> = kinds.iter().filter_map(|k| k.1.map(|(_, n)| n)).collect();
    let same_count = counts.windows(2).all(|w| w[0] == w[1]);
    let shown: Vec<String> = kinds
        .iter()
        .map(|(name, per)| match per {
            Some((per, _)) if same_count => format!("{name} {per:.2}"),
            Some((per, n)) => format!("{name} {per:.2} of {n}"),
            None => format!("{name} not measured"),
        })
        .collect();
    let mut scope = match counts.first() {
        Some(n) if same_count => format!("per request, {n} each"),
        _ => "per request".to_string(),
    };
    if let Some(opened) = obs.sessions_opened.filter(|_| obs.overall.sent > 0) {
        scope.push_str(&format!(
            "; whole load {:.2}",
            opened as f64 / obs.overall.sent as f64
        ));
    }
    let passed = kinds
        .iter()
        .all(|(_, per)| per.is_some_and(|(per, _)| per <= max_per_request));
    result(
        label,
        format!("{} ({scope})", shown.join(", ")),
        required,
        passed,
        hint,
    )
}

/// Every instance exports the named metrics.
fn metrics_present(names: &[String], hint: &str, obs: &Observations) -> LineResult {
    let mut missing = BTreeSet::new();
    for scrape in &obs.metrics {
        match scrape {
            Some(m) => missing.extend(names.iter().filter(|n| !m.has(n)).cloned()),
            None => {
                missing.insert("/metrics (no answer)".to_string());
            }
        }
    }
    if obs.metrics.is_empty() {
        missing.insert("/metrics (no instance)".to_string());
    }
    let measured = if missing.is_empty() {
        format!("all {} present", names.len())
    } else {
        format!(
            "missing {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    let passed = measured.starts_with("all");
    result(
        "pool metrics exported".to_string(),
        measured,
        format!("all {} present", names.len()),
        passed,
        hint,
    )
}

/// The instances' pools together fit in `max_connections` minus the reserved connections.
/// Each instance's `db_pool_acquire_timeout_seconds` must be below the client's timeout: a
/// pool that waits longer (or forever) turns a busy database into hung requests.
fn acquire_timeout(client_timeout: Duration, hint: &str, obs: &Observations) -> LineResult {
    let label = "pool acquire timeout".to_string();
    let required = format!("< {} (the client's timeout)", fmt_duration(client_timeout));
    let per: Vec<Option<f64>> = obs
        .metrics
        .iter()
        .map(|m| m.as_ref().and_then(|m| m.sum(ACQUIRE_TIMEOUT_SECONDS)))
        .collect();
    let shown: Vec<String> = per
        .iter()
        .zip(&obs.metrics)
        .map(|(t, m)| match (t, m) {
            (Some(t), _) => fmt_duration(Duration::from_secs_f64(t.max(0.0))),
            (None, Some(_)) => "not exported".to_string(),
            (None, None) => "down".to_string(),
        })
        .collect();
    let passed = !per.is_empty()
        && per
            .iter()
            .all(|t| t.is_some_and(|t| t < client_timeout.as_secs_f64()));
    let measured = match shown.len() {
        0 => "no instance answered /metrics".to_string(),
        1 => shown[0].clone(),
        _ => format!("{} (per instance)", shown.join(", ")),
    };
    result(label, measured, required, passed, hint)
}

/// The kit's gauge of the pool's `acquire_timeout`.
const ACQUIRE_TIMEOUT_SECONDS: &str = "db_pool_acquire_timeout_seconds";

fn pool_budget(reserved: u32, hint: &str, obs: &Observations) -> LineResult {
    let budget = obs.max_connections.saturating_sub(reserved);
    let required = format!(
        "<= {budget} (max_connections {} - {reserved} reserved)",
        obs.max_connections
    );
    let label = "pool budget".to_string();
    let maxes: Vec<Option<f64>> = obs
        .metrics
        .iter()
        .map(|m| m.as_ref().and_then(|m| m.sum("db_pool_max")))
        .collect();
    let answered = obs.metrics.iter().filter(|m| m.is_some()).count();
    if maxes.is_empty() || answered == 0 {
        return result(
            label,
            "no instance answered /metrics".to_string(),
            required,
            false,
            hint,
        );
    }
    if maxes
        .iter()
        .zip(&obs.metrics)
        .any(|(max, m)| m.is_some() && max.is_none())
    {
        return result(
            label,
            "no pool (db_pool_max not exported)".to_string(),
            required,
            false,
            hint,
        );
    }
    let total: f64 = maxes.iter().flatten().sum();
    let per: Vec<String> = maxes
        .iter()
        .map(|m| m.map_or("down".to_string(), |v| format!("{v:.0}")))
        .collect();
    let measured = if maxes.len() == 1 {
        format!("{total:.0}")
    } else {
        format!("{total:.0} = {} (per instance)", per.join(" + "))
    };
    // A down instance's pool cannot be read, so the sum cannot be vouched for.
    let all_answered = answered == maxes.len();
    result(
        label,
        measured,
        required,
        all_answered && total >= 1.0 && total <= f64::from(budget),
        hint,
    )
}

/// Connections PostgreSQL refused during the load.
fn refused_connections(max: u64, hint: &str, obs: &Observations) -> LineResult {
    let label = "connections refused by PostgreSQL (too many clients)".to_string();
    let required = format!("<= {max}");
    match obs.refused_connections {
        Some(n) => result(label, n.to_string(), required, n <= max, hint),
        None => result(
            label,
            "not measured (server log unreadable)".to_string(),
            required,
            false,
            hint,
        ),
    }
}

/// Every instance answered the final scrape.
fn instances_up(hint: &str, obs: &Observations) -> LineResult {
    // The instance the check itself killed is not expected back.
    let killed = obs.killed.as_ref().map(|k| k.instance as usize);
    let total = obs.metrics.len() - usize::from(killed.is_some());
    let up = obs
        .metrics
        .iter()
        .enumerate()
        .filter(|(i, m)| m.is_some() && Some(i + 1) != killed)
        .count();
    let mut measured = format!("{up}/{total}");
    let down: Vec<&String> = obs
        .down
        .iter()
        .filter(|d| killed.is_none_or(|k| !d.starts_with(&format!("instance {k}:"))))
        .collect();
    if !down.is_empty() {
        measured.push_str(&format!(
            " ({})",
            down.iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(k) = &obs.killed {
        measured.push_str(&format!(
            " + instance {} killed by the check at {:.0} s",
            k.instance,
            k.at.as_secs_f64()
        ));
    }
    if let Some(why) = &obs.kill_missed {
        // The scenario's lesson needs the kill: without it, the line cannot pass.
        return result(
            "instances up".to_string(),
            format!("{measured}; no instance was killed: {why}"),
            format!("{total}/{total} after the check kills one"),
            false,
            "The check kills the busiest instance during its load and could not: rerun it; if it persists, the load is shorter than [check] kill_instance_at.",
        );
    }
    result(
        "instances up".to_string(),
        measured,
        format!("{total}/{total}"),
        total > 0 && up == total,
        hint,
    )
}

/// The balance line: enough instances served requests, each close to an even share.
fn balance(served: &[Option<f64>], min_instances: u32, tolerance: f64, hint: &str) -> LineResult {
    let label = "request share per instance".to_string();
    let required = format!(
        ">= {min_instances} instances, each an even share ± {:.0}%",
        tolerance * 100.0
    );
    let total: f64 = served.iter().flatten().sum();
    if served.is_empty() || total <= 0.0 {
        return result(
            label,
            "no requests counted".to_string(),
            required,
            false,
            hint,
        );
    }
    let even = total / served.len() as f64;
    let shares: Vec<String> = served
        .iter()
        .map(|s| s.map_or("down".to_string(), |v| format!("{:.0}%", 100.0 * v / total)))
        .collect();
    let balanced = served
        .iter()
        .all(|s| s.is_some_and(|v| (v - even).abs() <= tolerance * even));
    let enough = served.len() >= min_instances as usize;
    let measured = format!("{} instance(s): {}", served.len(), shares.join(" / "));
    result(label, measured, required, enough && balanced, hint)
}
