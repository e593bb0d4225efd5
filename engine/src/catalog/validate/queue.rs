//! The parts of `scenario.toml` a queue lesson adds: `[topology.workers]`, the dependency's
//! `idempotency_header`, and the check's `restart_at`, `[check.drain]` and `[check.queue_depth]`.

use super::Ctx;
use crate::catalog::raw::{RawCheck, RawDrain, RawQueueDepth, RawWorkers};
use crate::catalog::{CatalogError, CheckLine, CheckSpec, WorkersSpec};

/// The longest drain a check may wait: a queue that needs more is not drained, it is stuck.
const MAX_DRAIN: std::time::Duration = std::time::Duration::from_secs(120);

/// The longest a killed worker may stay down: the check load is seconds long.
const MAX_WORKER_DOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// What `take` removed from `RawCheck` before the other lines are validated.
pub(super) struct QueueRaw {
    restart_at: Option<String>,
    worker_down: Option<String>,
    drain: Option<RawDrain>,
    depth: Option<RawQueueDepth>,
}

/// Takes the queue's fields out of `raw` (the rest of `[check]` is validated by `check`).
pub(super) fn take(raw: &mut RawCheck) -> QueueRaw {
    QueueRaw {
        restart_at: raw.restart_at.take(),
        worker_down: raw.worker_down.take(),
        drain: raw.drain.take(),
        depth: raw.queue_depth.take(),
    }
}

/// `[topology.workers]`: 1 to 8 processes.
pub(super) fn workers(
    cx: &Ctx,
    raw: Option<RawWorkers>,
) -> Result<Option<WorkersSpec>, CatalogError> {
    let Some(w) = raw else { return Ok(None) };
    if !(1..=8).contains(&w.count) {
        return Err(cx.invalid(
            "topology.workers.count",
            format!("between 1 and 8, got {}", w.count),
        ));
    }
    Ok(Some(WorkersSpec { count: w.count }))
}

/// `[topology.dependency] idempotency_header`: an HTTP header name.
pub(super) fn idempotency_header(
    cx: &Ctx,
    raw: Option<String>,
) -> Result<Option<String>, CatalogError> {
    match raw {
        Some(h) if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() || h.is_empty() => {
            Err(cx.invalid(
                "topology.dependency.idempotency_header",
                format!("an HTTP header name such as \"Idempotency-Key\", got {h:?}"),
            ))
        }
        other => Ok(other),
    }
}

/// `restart_at` (inside the check load), `[check.drain]` (needs a database) and
/// `[check.queue_depth]` (needs Redis), added to `check`.
pub(super) fn check(
    cx: &Ctx,
    raw: QueueRaw,
    check: &mut CheckSpec,
    has_postgres: bool,
    has_redis: bool,
) -> Result<(), CatalogError> {
    let hint = |field: &str, hint: String| {
        if hint.trim().is_empty() {
            Err(cx.invalid(field, "a hint for when the line fails"))
        } else {
            Ok(hint)
        }
    };
    if let Some(text) = &raw.restart_at {
        let at = cx.duration("check.restart_at", text)?;
        let total: std::time::Duration = check.profile.stages.iter().map(|s| s.duration).sum();
        if at >= total {
            return Err(cx.invalid(
                "check.restart_at",
                format!(
                    "a moment inside the check load (below its {:.0} s), got {text:?}",
                    total.as_secs_f64()
                ),
            ));
        }
        check.restart_at = Some(at);
    }
    if let Some(text) = &raw.worker_down {
        let down = cx.duration("check.worker_down", text)?;
        if check.restart_at.is_none() {
            return Err(cx.invalid(
                "check.worker_down",
                "a `restart_at` too (it says how long the worker it kills stays down)",
            ));
        }
        if down > MAX_WORKER_DOWN {
            return Err(cx.invalid(
                "check.worker_down",
                format!("at most {} s, got {text:?}", MAX_WORKER_DOWN.as_secs()),
            ));
        }
        check.worker_down = down;
    }
    if let Some(d) = raw.drain {
        if !has_postgres {
            return Err(cx.invalid(
                "check.drain",
                "a [topology.postgres] to run its sql on (the scenario has none)",
            ));
        }
        if d.sql.trim().is_empty() {
            return Err(cx.invalid(
                "check.drain.sql",
                "a query returning one integer: the work not done yet",
            ));
        }
        let within = cx.duration("check.drain.within", &d.within)?;
        if within > MAX_DRAIN {
            return Err(cx.invalid("check.drain.within", "at most 120s"));
        }
        check.lines.push(CheckLine::Drain {
            sql: d.sql,
            within,
            hint: hint("check.drain.hint", d.hint)?,
        });
    }
    if let Some(q) = raw.depth {
        if !has_redis {
            return Err(cx.invalid(
                "check.queue_depth",
                "a [topology.redis] holding the queue (the scenario has none)",
            ));
        }
        if q.key.trim().is_empty() || q.max == 0 {
            return Err(cx.invalid(
                "check.queue_depth",
                "a Redis key (key = \"orders\") and a max of at least 1",
            ));
        }
        check.lines.push(CheckLine::QueueDepth {
            key: q.key,
            max: q.max,
            hint: hint("check.queue_depth.hint", q.hint)?,
        });
    }
    Ok(())
}
