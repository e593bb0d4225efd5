//! The `[check]` sections one family of lessons adds, validated into check lines: a cache's
//! (`[check.cache_hits]`, `[check.rejected_writes]`, `[check.cache_ttl]`,
//! `[check.fresh_reads]`), a replica's (`[check.replica_reads]`, `[check.primary_reads]`) and
//! observability's (`[check.request_ids]`, `[check.route_metrics]`). `check.rs` validates the
//! rest of `[check]` and calls these.

use super::Ctx;
use crate::catalog::raw::{
    RawCacheHits, RawCacheTtl, RawFreshReads, RawRejectedWrites, RawRequestIds, RawRouteMetrics,
};
use crate::catalog::{CatalogError, CheckLine, Profile};
use crate::load::RequestTemplate;

/// `[check.request_ids]` (two lines, three with `propagated`) and `[check.route_metrics]`.
/// That `propagated` has a dependency to judge is checked with the topology (`mod.rs`).
pub(super) fn observability_lines(
    cx: &Ctx,
    ids: Option<RawRequestIds>,
    routes: Option<RawRouteMetrics>,
    profile: &Profile,
    lines: &mut Vec<CheckLine>,
) -> Result<(), CatalogError> {
    let hint = |field: &str, hint: String| {
        if hint.trim().is_empty() {
            Err(cx.invalid(field, "a hint for when the line fails"))
        } else {
            Ok(hint)
        }
    };
    if let Some(r) = ids {
        if axum::http::HeaderName::from_bytes(r.header.as_bytes()).is_err() {
            return Err(cx.invalid(
                "check.request_ids.header",
                format!(
                    "an HTTP header name, e.g. \"X-Request-Id\", got {:?}",
                    r.header
                ),
            ));
        }
        let base = hint("check.request_ids.hint", r.hint)?;
        let logs = match r.logs_hint {
            Some(h) => hint("check.request_ids.logs_hint", h)?,
            None => base.clone(),
        };
        let propagated = match r.propagated_hint {
            Some(h) if r.propagated => hint("check.request_ids.propagated_hint", h)?,
            Some(_) => {
                return Err(cx.invalid(
                    "check.request_ids.propagated_hint",
                    "only with propagated = true",
                ))
            }
            None => base.clone(),
        };
        match &r.propagated_path {
            Some(p) if !r.propagated => {
                return Err(cx.invalid(
                    "check.request_ids.propagated_path",
                    format!("only with propagated = true, got {p:?}"),
                ))
            }
            Some(p) if !p.starts_with('/') => {
                return Err(cx.invalid(
                    "check.request_ids.propagated_path",
                    format!(
                        "a path of the dependency starting with /, e.g. \"/authorize\", got {p:?}"
                    ),
                ))
            }
            _ => {}
        }
        lines.push(CheckLine::RequestIdsEchoed {
            header: r.header.clone(),
            hint: base,
        });
        lines.push(CheckLine::RequestIdsLogged {
            header: r.header.clone(),
            hint: logs,
        });
        if r.propagated {
            lines.push(CheckLine::RequestIdsPropagated {
                header: r.header,
                path: r.propagated_path,
                hint: propagated,
            });
        }
    }
    if let Some(r) = routes {
        if r.histogram.trim().is_empty() || r.label.trim().is_empty() {
            return Err(cx.invalid(
                "check.route_metrics",
                "a histogram name and a label name, e.g. \"http_request_duration_seconds\" and \"route\"",
            ));
        }
        if !(r.min_ratio > 0.0 && r.min_ratio <= 1.0) {
            return Err(cx.invalid(
                "check.route_metrics.min_ratio",
                format!("a fraction above 0, at most 1, got {}", r.min_ratio),
            ));
        }
        let mut routes: Vec<String> = profile.mix.iter().map(|t| t.path.clone()).collect();
        routes.sort();
        routes.dedup();
        lines.push(CheckLine::RouteMetrics {
            histogram: r.histogram,
            label: r.label,
            min_ratio: r.min_ratio,
            routes,
            hint: hint("check.route_metrics.hint", r.hint)?,
        });
    }
    Ok(())
}

/// `[check.replica_reads]` and `[check.primary_reads]`; that the topology has a replica to
/// measure is checked with it (`mod.rs`).
pub(super) fn replica_lines(
    cx: &Ctx,
    share: Option<crate::catalog::raw::RawReplicaReads>,
    primary: Option<crate::catalog::raw::RawPrimaryReads>,
    lines: &mut Vec<CheckLine>,
) -> Result<(), CatalogError> {
    let hint = |field: &str, hint: String| {
        if hint.trim().is_empty() {
            Err(cx.invalid(field, "a hint for when the line fails"))
        } else {
            Ok(hint)
        }
    };
    if let Some(s) = share {
        if !(s.min_share > 0.0 && s.min_share <= 1.0) {
            return Err(cx.invalid(
                "check.replica_reads.min_share",
                format!(
                    "a fraction above 0, at most 1 (0.7 = 70%), got {}",
                    s.min_share
                ),
            ));
        }
        lines.push(CheckLine::ReplicaReads {
            min_share: s.min_share,
            hint: hint("check.replica_reads.hint", s.hint)?,
        });
    }
    if let Some(p) = primary {
        if !(p.max_per_request.is_finite() && p.max_per_request > 0.0) {
            return Err(cx.invalid(
                "check.primary_reads.max_per_request",
                format!("a number of pages above 0, got {}", p.max_per_request),
            ));
        }
        lines.push(CheckLine::PrimaryReads {
            max_per_request: p.max_per_request,
            hint: hint("check.primary_reads.hint", p.hint)?,
        });
    }
    Ok(())
}

/// The cache's lines, taken out of `RawCheck` before its other fields are consumed.
pub(super) struct CacheRaw {
    pub(super) hits: Option<RawCacheHits>,
    pub(super) rejected: Option<RawRejectedWrites>,
    pub(super) ttl: Option<RawCacheTtl>,
    pub(super) fresh: Option<RawFreshReads>,
}

/// `[check.cache_hits]`, `[check.rejected_writes]`, `[check.cache_ttl]` (each needs
/// `[topology.redis]`) and `[check.fresh_reads]` (any scenario with a write and a read).
pub(super) fn cache_lines(
    cx: &Ctx,
    raw: &CacheRaw,
    requests: &[RequestTemplate],
    has_redis: bool,
    lines: &mut Vec<CheckLine>,
) -> Result<(), CatalogError> {
    let needs_redis = |field: &str| {
        if has_redis {
            Ok(())
        } else {
            Err(cx.invalid(
                field,
                "a [topology.redis] to measure (the scenario has none)",
            ))
        }
    };
    let hint = |field: &str, hint: &str| {
        if hint.trim().is_empty() {
            Err(cx.invalid(field, "a hint for when the line fails"))
        } else {
            Ok(hint.to_string())
        }
    };
    if let Some(h) = &raw.hits {
        needs_redis("check.cache_hits")?;
        if !(h.min_ratio > 0.0 && h.min_ratio <= 1.0) {
            return Err(cx.invalid(
                "check.cache_hits.min_ratio",
                format!(
                    "a fraction above 0, at most 1 (0.8 = 80%), got {}",
                    h.min_ratio
                ),
            ));
        }
        lines.push(CheckLine::CacheHits {
            min_ratio: h.min_ratio,
            hint: hint("check.cache_hits.hint", &h.hint)?,
        });
    }
    if let Some(r) = &raw.rejected {
        needs_redis("check.rejected_writes")?;
        lines.push(CheckLine::RejectedWrites {
            max: r.max,
            hint: hint("check.rejected_writes.hint", &r.hint)?,
        });
    }
    if let Some(t) = &raw.ttl {
        needs_redis("check.cache_ttl")?;
        let max = cx.duration("check.cache_ttl.max", &t.max)?;
        if max.is_zero() {
            return Err(cx.invalid("check.cache_ttl.max", "a duration above 0, e.g. \"60s\""));
        }
        lines.push(CheckLine::CacheTtl {
            max,
            hint: hint("check.cache_ttl.hint", &t.hint)?,
        });
    }
    if let Some(f) = &raw.fresh {
        let find = |field: &str, name: &str| {
            requests
                .iter()
                .find(|r| r.name == name)
                .cloned()
                .ok_or_else(|| {
                    cx.invalid(
                        field,
                        format!("the name of a [[requests]] entry, got {name:?}"),
                    )
                })
        };
        let write = find("check.fresh_reads.write", &f.write)?;
        let read = find("check.fresh_reads.read", &f.read)?;
        if f.write == f.read {
            return Err(cx.invalid(
                "check.fresh_reads.read",
                "a request other than the write (a read of what the write changed)",
            ));
        }
        if !(1..=200).contains(&f.pairs) {
            return Err(cx.invalid(
                "check.fresh_reads.pairs",
                format!("between 1 and 200, got {}", f.pairs),
            ));
        }
        lines.push(CheckLine::FreshReads {
            write,
            read,
            pairs: f.pairs,
            hint: hint("check.fresh_reads.hint", &f.hint)?,
        });
    }
    Ok(())
}
