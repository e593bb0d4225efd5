//! The check lines of a scenario (`[check]`): SLOs, plans, connections, metrics, pool budget,
//! refused connections, balance; each against the profiles and requests it names.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{lessons, Ctx};
use crate::catalog::raw::RawCheck;
use crate::catalog::{CatalogError, CheckLine, CheckSpec, Percentile, Profile, SloMetric};
use crate::load::RequestTemplate;

pub(super) fn check(
    cx: &Ctx,
    raw: RawCheck,
    profiles: &BTreeMap<String, Profile>,
    requests: &[RequestTemplate],
    has_postgres: bool,
    has_redis: bool,
) -> Result<CheckSpec, CatalogError> {
    let raw_cache = lessons::CacheRaw {
        hits: raw.cache_hits,
        rejected: raw.rejected_writes,
        ttl: raw.cache_ttl,
        fresh: raw.fresh_reads,
    };
    let mut lines = Vec::new();
    for (i, r) in raw.responses.into_iter().enumerate() {
        // The load records the status of failed answers only (4xx, 5xx).
        if !(400..=599).contains(&r.status) {
            return Err(cx.invalid(
                format!("check.responses[{i}].status"),
                format!("an error status from 400 to 599, got {}", r.status),
            ));
        }
        if r.hint.trim().is_empty() {
            return Err(cx.invalid(
                format!("check.responses[{i}].hint"),
                "a hint for when the line fails",
            ));
        }
        lines.push(CheckLine::Responses {
            status: r.status,
            max: r.max,
            hint: r.hint,
        });
    }
    if let Some(e) = raw.edge_cache {
        if !requests.iter().any(|r| r.name == e.request) {
            return Err(cx.invalid(
                "check.edge_cache.request",
                format!("the name of a [[requests]] entry, got {:?}", e.request),
            ));
        }
        if !e.route.starts_with('/') {
            return Err(cx.invalid(
                "check.edge_cache.route",
                format!(
                    "the service's route pattern, e.g. \"/static/{{file}}\", got {:?}",
                    e.route
                ),
            ));
        }
        if !(e.min_ratio > 0.0 && e.min_ratio <= 1.0) {
            return Err(cx.invalid(
                "check.edge_cache.min_ratio",
                format!("a fraction above 0, at most 1, got {}", e.min_ratio),
            ));
        }
        if e.hint.trim().is_empty() {
            return Err(cx.invalid("check.edge_cache.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::EdgeCache {
            request: e.request,
            route: e.route,
            min_ratio: e.min_ratio,
            hint: e.hint,
        });
    }
    let kill_instance_at = match &raw.kill_instance_at {
        Some(text) => {
            let at = cx.duration("check.kill_instance_at", text)?;
            let total: Duration = profiles
                .get(&raw.profile)
                .map(|p| p.stages.iter().map(|s| s.duration).sum())
                .unwrap_or_default();
            if at.is_zero() || at >= total {
                return Err(cx.invalid(
                    "check.kill_instance_at",
                    format!(
                        "a moment inside the check load (above 0 s, below its {:.0} s), got {text:?}",
                        total.as_secs_f64()
                    ),
                ));
            }
            if raw_cache.fresh.is_some() {
                return Err(cx.invalid(
                    "check.kill_instance_at",
                    "no [check.fresh_reads] with it: the probe reads every instance, the killed one too",
                ));
            }
            Some(at)
        }
        None => None,
    };
    let Some(profile) = profiles.get(&raw.profile) else {
        return Err(cx.invalid(
            "check.profile",
            format!(
                "the name of a [profiles.<name>] section ({}), got {:?}",
                profiles.keys().cloned().collect::<Vec<_>>().join(", "),
                raw.profile
            ),
        ));
    };
    for (i, slo) in raw.slo.into_iter().enumerate() {
        let field = |f: &str| format!("check.slo[{i}].{f}");
        if slo.hint.trim().is_empty() {
            return Err(cx.invalid(field("hint"), "a hint for when the line fails"));
        }
        if let Some(req) = &slo.request {
            if !requests.iter().any(|r| &r.name == req) {
                return Err(cx.invalid(
                    field("request"),
                    format!("the name of a [[requests]] entry, got {req:?}"),
                ));
            }
        }
        let percentile = match slo.metric.as_str() {
            "p50" => Some(Percentile::P50),
            "p90" => Some(Percentile::P90),
            "p95" => Some(Percentile::P95),
            "p99" => Some(Percentile::P99),
            _ => None,
        };
        let metric = match (percentile, slo.metric.as_str()) {
            (Some(percentile), _) => {
                let max = match &slo.max {
                    Some(toml::Value::String(s)) => cx.duration(&field("max"), s)?,
                    _ => return Err(cx.invalid(field("max"), "a duration such as \"250ms\"")),
                };
                SloMetric::Latency { percentile, max }
            }
            (None, "error_rate") => {
                let max = match &slo.max {
                    Some(toml::Value::Float(f)) if (0.0..=1.0).contains(f) => *f,
                    Some(toml::Value::Integer(i @ 0..=1)) => *i as f64,
                    _ => {
                        return Err(
                            cx.invalid(field("max"), "a fraction between 0 and 1, e.g. 0.01")
                        )
                    }
                };
                SloMetric::ErrorRate { max }
            }
            (None, "achieved_rate") if slo.request.is_some() => {
                return Err(cx.invalid(
                    field("request"),
                    "no request: achieved_rate is judged on the whole run",
                ))
            }
            (None, "achieved_rate") => match slo.min_ratio {
                Some(r) if r > 0.0 && r <= 1.0 => SloMetric::AchievedRate { min_ratio: r },
                _ => {
                    return Err(cx.invalid(
                        field("min_ratio"),
                        "the fraction of the offered rate that must succeed, e.g. 0.95",
                    ))
                }
            },
            (None, other) => {
                return Err(cx.invalid(
                    field("metric"),
                    format!("one of p50, p90, p95, p99, error_rate, achieved_rate; got {other:?}"),
                ))
            }
        };
        lines.push(CheckLine::Slo {
            metric,
            request: slo.request,
            hint: slo.hint,
        });
    }
    for (i, plan) in raw.plan.into_iter().enumerate() {
        let field = |f: &str| format!("check.plan[{i}].{f}");
        if !has_postgres {
            return Err(cx.invalid(
                field("query"),
                "a [topology.postgres] section to run the query on",
            ));
        }
        if plan.query.trim().is_empty() || plan.hint.trim().is_empty() {
            return Err(cx.invalid(field("query"), "a query and a hint"));
        }
        // Plan results are keyed by name, so two lines may not share one.
        if lines
            .iter()
            .any(|l| matches!(l, CheckLine::Plan { name, .. } if *name == plan.name))
        {
            return Err(cx.invalid(
                field("name"),
                format!("a name unique among plan lines, got {:?}", plan.name),
            ));
        }
        if plan.uses_index_on.is_none() && !plan.no_sort && plan.max_buffers.is_none() {
            return Err(cx.invalid(
                field("uses_index_on"),
                "at least one of uses_index_on, no_sort = true, max_buffers",
            ));
        }
        if plan
            .uses_index_on
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(cx.invalid(field("uses_index_on"), "a table name"));
        }
        if plan.max_buffers == Some(0) {
            return Err(cx.invalid(field("max_buffers"), "a page count of at least 1"));
        }
        lines.push(CheckLine::Plan {
            name: plan.name,
            query: plan.query,
            uses_index_on: plan.uses_index_on,
            no_sort: plan.no_sort,
            max_buffers: plan.max_buffers,
            hint: plan.hint,
        });
    }
    if let Some(c) = raw.connections {
        // Written as a negated comparison so that NaN is rejected too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let bad = !(c.max_per_request >= 0.0);
        if !has_postgres || bad {
            return Err(cx.invalid(
                "check.connections.max_per_request",
                "a fraction of new connections per request, with [topology.postgres]",
            ));
        }
        if c.hint.trim().is_empty() {
            return Err(cx.invalid("check.connections.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::Connections {
            max_per_request: c.max_per_request,
            hint: c.hint,
        });
    }
    if let Some(m) = raw.metrics {
        if m.present.is_empty() {
            return Err(cx.invalid("check.metrics.present", "at least one metric name"));
        }
        if m.hint.trim().is_empty() {
            return Err(cx.invalid("check.metrics.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::MetricsPresent {
            names: m.present,
            hint: m.hint,
        });
    }
    if let Some(b) = raw.pool_budget {
        if !has_postgres {
            return Err(cx.invalid("check.pool_budget", "a [topology.postgres] section"));
        }
        if b.hint.trim().is_empty() {
            return Err(cx.invalid("check.pool_budget.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::PoolBudget {
            reserved: b.reserved,
            hint: b.hint,
        });
    }
    if let Some(a) = raw.acquire_timeout {
        if !has_postgres {
            return Err(cx.invalid("check.acquire_timeout", "a [topology.postgres] section"));
        }
        if a.hint.trim().is_empty() {
            return Err(cx.invalid(
                "check.acquire_timeout.hint",
                "a hint for when the line fails",
            ));
        }
        lines.push(CheckLine::AcquireTimeout {
            client_timeout: profile.timeout,
            hint: a.hint,
        });
    }
    if let Some(r) = raw.refused_connections {
        if !has_postgres {
            return Err(cx.invalid("check.refused_connections", "a [topology.postgres] section"));
        }
        if r.hint.trim().is_empty() {
            return Err(cx.invalid(
                "check.refused_connections.hint",
                "a hint for when the line fails",
            ));
        }
        lines.push(CheckLine::RefusedConnections {
            max: r.max,
            hint: r.hint,
        });
    }
    if let Some(b) = raw.balance {
        if b.min_instances == 0 {
            return Err(cx.invalid("check.balance.min_instances", "at least 1"));
        }
        if !(b.tolerance > 0.0 && b.tolerance < 1.0) {
            return Err(cx.invalid(
                "check.balance.tolerance",
                format!(
                    "a fraction between 0 and 1 (0.2 = ±20%), got {}",
                    b.tolerance
                ),
            ));
        }
        if b.hint.trim().is_empty() {
            return Err(cx.invalid("check.balance.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::Balance {
            min_instances: b.min_instances,
            tolerance: b.tolerance,
            hint: b.hint,
        });
    }
    if let Some(s) = raw.served {
        if !(s.min_ratio > 0.0 && s.min_ratio <= 1.0) {
            return Err(cx.invalid(
                "check.served.min_ratio",
                format!(
                    "a fraction above 0, at most 1 (0.95 = 95%), got {}",
                    s.min_ratio
                ),
            ));
        }
        if s.hint.trim().is_empty() {
            return Err(cx.invalid("check.served.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::Served {
            min_ratio: s.min_ratio,
            hint: s.hint,
        });
    }
    if let Some(d) = raw.dependency_calls {
        if d.max_per_key == 0 {
            return Err(cx.invalid("check.dependency_calls.max_per_key", "at least 1"));
        }
        if d.hint.trim().is_empty() {
            return Err(cx.invalid(
                "check.dependency_calls.hint",
                "a hint for when the line fails",
            ));
        }
        lines.push(CheckLine::DependencyCalls {
            max_per_key: d.max_per_key,
            hint: d.hint,
        });
    }
    if let Some(r) = raw.rate_limit {
        let field = |f: &str| format!("check.rate_limit.{f}");
        if !requests.iter().any(|t| t.name == r.request) {
            return Err(cx.invalid(
                field("request"),
                format!("the name of a [[requests]] entry, got {:?}", r.request),
            ));
        }
        if !(r.max_rate.is_finite() && r.max_rate > 0.0) {
            return Err(cx.invalid(
                field("max_rate"),
                format!("successful answers per second above 0, got {}", r.max_rate),
            ));
        }
        if r.hint.trim().is_empty() {
            return Err(cx.invalid(field("hint"), "a hint for when the line fails"));
        }
        lines.push(CheckLine::RateLimit {
            request: r.request,
            max_rate: r.max_rate,
            hint: r.hint,
        });
    }
    lessons::cache_lines(cx, &raw_cache, requests, has_redis, &mut lines)?;
    lessons::replica_lines(cx, raw.replica_reads, raw.primary_reads, &mut lines)?;
    lessons::observability_lines(cx, raw.request_ids, raw.route_metrics, profile, &mut lines)?;
    if lines.is_empty() {
        return Err(cx.invalid(
            "check",
            "at least one line (slo, plan, connections, metrics, pool_budget, refused_connections)",
        ));
    }
    let min_hold = match &raw.min_hold {
        Some(text) => Some(cx.duration("check.min_hold", text)?),
        None => None,
    };
    Ok(CheckSpec {
        profile: profile.clone(),
        min_hold,
        kill_instance_at,
        restart_at: None,
        worker_down: std::time::Duration::ZERO,
        dependency_fault: None,
        lines,
    })
}
