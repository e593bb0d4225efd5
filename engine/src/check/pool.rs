//! Lines about the service's database connections: new PostgreSQL sessions per request, the
//! pools' exported metrics, their acquire timeout against the client's, their sizes against
//! the server's `max_connections` budget, and connections the server refused. Pure: judged
//! from `Observations`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::evaluate::result;
use super::{fmt_duration, LineResult, Observations};

/// New PostgreSQL sessions per request, per request kind: a handler without the pool opens
/// one per request. Judged on each kind's probe (`Observations::sessions_per_kind`), so a
/// pooled endpoint that makes up most of the mix cannot hide one that still connects; the
/// whole load's figure is shown alongside.
pub(super) fn connections(max_per_request: f64, hint: &str, obs: &Observations) -> LineResult {
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
pub(super) fn metrics_present(names: &[String], hint: &str, obs: &Observations) -> LineResult {
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
pub(super) fn acquire_timeout(
    client_timeout: Duration,
    hint: &str,
    obs: &Observations,
) -> LineResult {
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

pub(super) fn pool_budget(reserved: u32, hint: &str, obs: &Observations) -> LineResult {
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
pub(super) fn refused_connections(max: u64, hint: &str, obs: &Observations) -> LineResult {
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
