//! The check load: run against `Running::load_targets`, with PostgreSQL's sessions and refused
//! connections, every instance's request counter and final scrape, the per-kind connection
//! probe (`probe.rs`, after the load) and each plan line's EXPLAIN gathered around it into
//! `Observations`, then judged into a `CheckReport`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{evaluate, explain, CheckError, CheckReport, Observations, RequestObs};
use crate::catalog::CheckLine;
use crate::lab::Running;
use crate::load::{self, SecondStats};
use crate::metrics::{PgProbe, PromText};

/// Whether a check runs its load. Without it (`sdlab check --no-load`), only the lines that
/// do not need a load are judged (answers, plans, pool settings, exported metrics, instances
/// up); the others are skipped and the verdict is never PASS. For quick feedback, and for the
/// golden tests of wrong fixes whose verdict rests on such lines (`load = false` in fixes/).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    Run,
    Skip,
}

/// Runs the check load against `running` (unless `load` is `Skip`) and judges every line.
pub async fn run(
    running: &Running,
    ticks: Option<tokio::sync::mpsc::UnboundedSender<SecondStats>>,
    cancel: CancellationToken,
    load: Load,
) -> Result<CheckReport, CheckError> {
    let scenario = &running.scenario;
    let profile = &scenario.check.profile;
    let targets = running.load_targets();
    if targets.is_empty() {
        return Err(CheckError::Setup("no service is running".to_string()));
    }
    let mut probe = match running.database.as_ref() {
        Some(db) => Some(
            PgProbe::connect(
                &db.admin_url(),
                &running.targets().postgres.map(|p| p.1).unwrap_or_default(),
            )
            .await
            .map_err(|e| CheckError::Setup(format!("connect to PostgreSQL: {e}")))?,
        ),
        None => None,
    };
    let sessions_before = match probe.as_mut() {
        Some(p) => p.sessions_total().await.ok(),
        None => None,
    };
    let log_before = match probe.as_mut() {
        Some(p) => p.server_log_size().await.ok(),
        None => None,
    };
    // Users log in before anything is measured (scenarios with `[sessions]`).
    let sessions = load::prepare_sessions(scenario.sessions.as_ref(), &targets, profile.timeout)
        .await
        .map_err(|e| CheckError::Setup(e.to_string()))?;
    // Each instance's request counter before the load, so the check sees who served it.
    let ports: Vec<u16> = running.services.iter().map(|s| s.port).collect();
    let scrapes_before: Vec<Option<PromText>> =
        crate::metrics::scrape_all(&ports, Duration::from_secs(2))
            .await
            .into_iter()
            .map(Result::ok)
            .collect();
    // An instance that has served nothing yet exports no counter: that is 0.
    let served_before: Vec<Option<f64>> = scrapes_before
        .iter()
        .map(|m| m.as_ref().map(|m| m.sum(REQUESTS_TOTAL).unwrap_or(0.0)))
        .collect();
    let calls_before = running.dependency.as_ref().map(|d| d.calls_per_key());
    let redis_port = running.redis.as_ref().map(|r| r.port());
    let redis_before = match redis_port {
        Some(port) => Some(super::cache::counters(port).await),
        None => None,
    };
    // `[check.request_ids]`: an ID on every request of the load, the log files' lengths so
    // only what the load made the instances write is read, the dependency's calls traced.
    let tracing_ids = match (load, request_id_header(&scenario.check.lines)) {
        (Load::Run, Some((header, propagated, path))) => {
            let ids = load::RequestIds::new(header, &load::RequestIds::run_prefix())
                .map_err(CheckError::Setup)?;
            if propagated {
                if let Some(dep) = running.dependency.as_ref() {
                    dep.trace_header(ids.header().clone());
                }
            }
            let offsets: Vec<u64> = running
                .services
                .iter()
                .map(|s| std::fs::metadata(&s.log_path).map_or(0, |m| m.len()))
                .collect();
            Some((ids, offsets, propagated, path))
        }
        _ => None,
    };
    // The primary's and the replica's own read counters, around the load only.
    let measures_replica = scenario.check.lines.iter().any(|l| {
        matches!(
            l,
            CheckLine::ReplicaReads { .. } | CheckLine::PrimaryReads { .. }
        )
    });
    let replica_probe = match (running.database_url(), running.replica_url()) {
        (Some(primary), Some(replica)) if measures_replica && load == Load::Run => {
            Some(super::replica::ReadProbe::start(&primary, &replica).await)
        }
        (_, None) if measures_replica => Some(Err("the lab runs no replica".to_string())),
        _ => None,
    };
    let mut kill = None;
    // `[check.queue_depth]`: the queue's depth every second of the load.
    let depth_stop = CancellationToken::new();
    let depth_task = match (load, redis_port, queue_depth_key(&scenario.check.lines)) {
        (Load::Run, Some(port), Some(key)) => Some(tokio::spawn(super::queue::sample_depth(
            port,
            key.to_string(),
            depth_stop.clone(),
        ))),
        _ => None,
    };
    // `[check] restart_at`: the processes started again after the crash, kept until the end.
    let mut restarted = Vec::new();
    let mut crash = None;
    let summary = match load {
        Load::Run => {
            let mut plan = profile.plan(targets.clone(), None, None);
            plan.sessions = sessions.clone();
            let ids = tracing_ids.as_ref().map(|(ids, _, _, _)| ids.clone());
            let cancel_load = cancel.clone();
            let run_load = async move {
                match ids {
                    Some(ids) => load::run_with_request_ids(plan, ids, ticks, cancel_load).await,
                    None => load::run(plan, ticks, cancel_load).await,
                }
            };
            // `[check.dependency_fault]`: timed from the load's start, like `restart_at`.
            if let (Some(fault), Some(dep)) =
                (scenario.check.dependency_fault, running.dependency.as_ref())
            {
                dep.schedule_fault(std::time::Instant::now(), fault);
            }
            let restart_at = scenario.check.restart_at;
            let worker_down = scenario.check.worker_down;
            let load_and_crash = async move {
                tokio::join!(run_load, async move {
                    match restart_at {
                        Some(at) => Some(super::queue::crash_after(at, worker_down, running).await),
                        None => None,
                    }
                })
            };
            let ((summary, crashed), outcome) = super::kill::load_racing_the_kill(
                load_and_crash,
                scenario.check.kill_instance_at,
                running,
                &scrapes_before,
            )
            .await;
            kill = outcome;
            if let Some((outcome, fresh)) = crashed {
                crash = Some(outcome);
                restarted = fresh;
            }
            let summary = summary.map_err(|e| CheckError::Load(e.to_string()))?;
            // Sessions report themselves to pg_stat_database within a second; let them.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Some(summary)
        }
        Load::Skip => None,
    };
    depth_stop.cancel();
    let depth = match depth_task {
        Some(task) => Some(task.await.unwrap_or_else(|e| Err(e.to_string()))),
        None => None,
    };
    // `[check.drain]`: before the dependency's calls are counted, so the work done while
    // draining counts too.
    let drain = match (
        load,
        drain_line(&scenario.check.lines),
        running.database_url(),
    ) {
        (Load::Run, Some((sql, within)), Some(url)) => {
            Some(super::queue::drain(&url, sql, within).await)
        }
        (Load::Run, Some(_), None) => Some(Err("no database".to_string())),
        _ => None,
    };
    let queue = super::queue::QueueObs {
        drain,
        depth,
        crash,
    };
    // After the 1.5 s above, so the log pumps have written what the load made the services
    // print; before the probes and the answers, whose requests carry no ID.
    let request_ids = tracing_ids.map(|(ids, offsets, propagated, path)| {
        super::request_ids::observe(running, &ids, offsets, propagated, path)
    });
    // Right after the load, before the probes and the answers add their own lookups.
    let redis = match (redis_port, redis_before) {
        (Some(port), Some(before)) => Some(match (before, super::cache::counters(port).await) {
            (Ok(before), Ok(after)) => Ok(before.until(after)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }),
        _ => None,
    };
    let replica_reads = match &replica_probe {
        Some(Ok(p)) => Some(p.finish().await),
        Some(Err(e)) => Some(Err(e.clone())),
        None => None,
    };
    drop(replica_probe);
    let sessions_after = match probe.as_mut() {
        Some(p) => p.sessions_total().await.ok(),
        None => None,
    };
    // After the drain, so the calls the retries made count; the fault's window is over.
    let fault = match (scenario.check.dependency_fault, running.dependency.as_ref()) {
        (Some(fault), Some(dep)) if load == Load::Run => Some((fault, dep.end_fault())),
        _ => None,
    };
    let dependency_calls =
        super::instances::dependency_calls_since(running.dependency.as_ref(), calls_before, fault);
    let refused_connections = match (probe.as_mut(), log_before) {
        (Some(p), Some(from)) => {
            let mut total = Some(0);
            for needle in REFUSED {
                let n = p.count_in_server_log(from, needle).await.ok();
                total = total.zip(n).map(|(a, b)| a + b);
            }
            total
        }
        _ => None,
    };
    // All instances at once, each with a short timeout: a dead one is reported, not waited on.
    let mut metrics: Vec<Option<PromText>> = Vec::new();
    let mut down = Vec::new();
    let scrapes = crate::metrics::scrape_all(&ports, Duration::from_secs(2)).await;
    for (service, scrape) in running.services.iter().zip(scrapes) {
        match scrape {
            Ok(m) => metrics.push(Some(m)),
            Err(why) => {
                down.push(format!("instance {}: {why}", service.instance));
                metrics.push(None);
            }
        }
    }
    // After the scrapes, so its requests count in neither the balance nor the refusals.
    let measures_connections = scenario
        .check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::Connections { .. }));
    let sessions_per_kind = match probe.as_ref() {
        Some(pg) if measures_connections && load == Load::Run => {
            super::probe::sessions_per_kind(pg, profile, &targets, sessions.as_ref(), &cancel).await
        }
        _ => BTreeMap::new(),
    };
    let mut plans = BTreeMap::new();
    for line in &scenario.check.lines {
        if let CheckLine::Plan {
            name,
            query,
            max_buffers,
            ..
        } = line
        {
            let facts = match running.database_url() {
                Some(url) => explain(&url, query, max_buffers.is_some()).await,
                None => Err("no database".to_string()),
            };
            plans.insert(name.clone(), facts);
        }
    }
    // Last, after every counter was read: its requests count in no line but its own.
    let judging = std::time::Instant::now();
    let answers = match targets
        .first()
        .and_then(|t| crate::process::local_port(t, "http"))
    {
        Some(port) => {
            super::answers::verify(
                profile,
                &scenario.oracles,
                port,
                running.database_url().as_deref(),
                running.dependency.as_ref(),
                sessions.as_ref(),
                &cancel,
            )
            .await
        }
        None => Err(format!(
            "no port in the load's target {:?}",
            targets.first()
        )),
    };
    let fresh_reads = match scenario.check.lines.iter().find_map(|l| match l {
        CheckLine::FreshReads {
            write, read, pairs, ..
        } => Some((write, read, *pairs)),
        _ => None,
    }) {
        Some((write, read, pairs)) => Some(
            super::fresh::probe(
                write,
                read,
                pairs,
                &scenario.oracles,
                &ports,
                running.database_url().as_deref(),
                profile.timeout,
                sessions.as_ref(),
                &cancel,
            )
            .await,
        ),
        None => None,
    };
    // Last: the keys every request before made, with the expiries they were given.
    let judges_ttl = scenario
        .check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::CacheTtl { .. }));
    let key_expiries = match redis_port {
        Some(port) if judges_ttl => Some(super::cache::expiries(port).await),
        _ => None,
    };
    let answers_judged = answers
        .as_ref()
        .ok()
        .map(|kinds| (kinds.values().map(|k| k.checked).sum(), judging.elapsed()));
    // What each instance served: the killed one's counters as read just before its death.
    let counted: Vec<Option<&PromText>> = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| match &kill {
            Some(super::kill::KillOutcome::Killed(k, _, last)) if *k == i => last.as_ref(),
            _ => m.as_ref(),
        })
        .collect();
    let route_served =
        super::traffic::route_served(&scenario.check.lines, &scrapes_before, &counted);
    let route_counts = scenario.check.lines.iter().find_map(|l| match l {
        CheckLine::RouteMetrics {
            histogram, label, ..
        } => Some(super::routes::route_counts(
            histogram,
            label,
            &scrapes_before,
            &counted,
        )),
        _ => None,
    });
    let obs = Observations {
        overall: summary
            .as_ref()
            .map_or_else(RequestObs::default, |run| RequestObs {
                sent: run.sent,
                failed: run.failed,
                too_many: run.per_template.iter().map(|(_, t)| t.too_many).sum(),
                ok_rate: run.achieved_rate,
                p50: run.latency.p50,
                p90: run.latency.p90,
                p95: run.latency.p95,
                p99: run.latency.p99,
            }),
        per_request: summary
            .iter()
            .flat_map(|run| run.per_template.iter().map(move |t| (run.duration, t)))
            .map(|(duration, (name, t))| {
                (
                    name.clone(),
                    RequestObs {
                        sent: t.sent,
                        failed: t.failed,
                        too_many: t.too_many,
                        ok_rate: if duration.is_zero() {
                            0.0
                        } else {
                            t.ok as f64 / duration.as_secs_f64()
                        },
                        p50: t.latency.p50,
                        p90: t.latency.p90,
                        p95: t.latency.p95,
                        p99: t.latency.p99,
                    },
                )
            })
            .collect(),
        errors: summary
            .as_ref()
            .map(|r| r.errors.clone())
            .unwrap_or_default(),
        // Without a load, the rate the check would have offered, for the skipped line's
        // requirement.
        offered_rate: summary
            .as_ref()
            .map_or_else(|| planned_rate(profile), |r| r.offered_rate),
        achieved_rate: summary.as_ref().map_or(0.0, |r| r.achieved_rate),
        sessions_opened: match (sessions_before, sessions_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).max(0) as u64),
            _ => None,
        },
        sessions_per_kind,
        served: served_before
            .iter()
            .zip(&counted)
            .map(|(before, after)| {
                match (before, after.map(|m| m.sum(REQUESTS_TOTAL).unwrap_or(0.0))) {
                    (Some(b), Some(a)) => Some((a - b).max(0.0)),
                    _ => None,
                }
            })
            .collect(),
        metrics,
        down,
        refused_connections,
        max_connections: scenario
            .topology
            .postgres
            .as_ref()
            .map(|p| p.max_connections())
            .unwrap_or(100),
        plans,
        answers,
        dependency_calls,
        load_ran: load == Load::Run,
        redis,
        key_expiries,
        fresh_reads,
        replica_reads,
        killed: match &kill {
            Some(super::kill::KillOutcome::Killed(_, k, _)) => Some(k.clone()),
            _ => None,
        },
        kill_missed: match kill {
            Some(super::kill::KillOutcome::Missed(why)) => Some(why),
            _ => None,
        },
        route_served,
        request_ids,
        route_counts,
        queue,
    };
    let lines = evaluate(&scenario.check.lines, &obs);
    drop(restarted);
    let log_errors = running
        .services
        .iter()
        .flat_map(|s| error_lines(&s.logs(400)))
        .collect();
    Ok(CheckReport {
        scenario: scenario.id.clone(),
        code: String::new(),
        passed: lines.iter().all(|l| l.passed),
        lines,
        summary,
        log_errors,
        answers_judged,
    })
}

/// The Redis key of `[check.queue_depth]`.
fn queue_depth_key(lines: &[CheckLine]) -> Option<&str> {
    lines.iter().find_map(|l| match l {
        CheckLine::QueueDepth { key, .. } => Some(key.as_str()),
        _ => None,
    })
}

/// The query and the patience of `[check.drain]`.
fn drain_line(lines: &[CheckLine]) -> Option<(&str, Duration)> {
    lines.iter().find_map(|l| match l {
        CheckLine::Drain { sql, within, .. } => Some((sql.as_str(), *within)),
        _ => None,
    })
}

/// The header of `[check.request_ids]`, whether the dependency's calls are judged too, and
/// which of them (`propagated_path`).
fn request_id_header(lines: &[CheckLine]) -> Option<(&str, bool, Option<&str>)> {
    let header = lines.iter().find_map(|l| match l {
        CheckLine::RequestIdsEchoed { header, .. } => Some(header.as_str()),
        _ => None,
    })?;
    let propagated = lines.iter().find_map(|l| match l {
        CheckLine::RequestIdsPropagated { path, .. } => Some(path.as_deref()),
        _ => None,
    });
    Some((header, propagated.is_some(), propagated.flatten()))
}

/// The profile's average arrival rate (ramps counted at their mean).
fn planned_rate(profile: &crate::catalog::Profile) -> f64 {
    let mut requests = 0.0;
    let mut secs = 0.0;
    for stage in &profile.stages {
        let d = stage.duration.as_secs_f64();
        requests += d * (stage.rate_from.unwrap_or(stage.rate) + stage.rate) / 2.0;
        secs += d;
    }
    if secs > 0.0 {
        requests / secs
    } else {
        0.0
    }
}

/// The kit's request counter (every instance exports it), for the balance line.
pub(super) const REQUESTS_TOTAL: &str = "http_requests_total";

/// What PostgreSQL logs when it refuses a connection: over `max_connections`, or (the
/// services connect as an unprivileged role) into the slots reserved for superusers, "remaining
/// connection slots are reserved for non-replication superuser connections" (15) or "... for
/// roles with the SUPERUSER attribute" (16+).
const REFUSED: [&str; 2] = [
    "too many clients already",
    "remaining connection slots are reserved for",
];

/// Log lines that report errors (the kit logs causes at ERROR, sqlx slow queries at WARN),
/// errors first, each once, cut to a readable length. A JSON line (`logview`) is judged by its
/// level and shown readably (time, level, request ID, message, fields).
fn error_lines(logs: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut picked: Vec<(u8, String)> = logs
        .lines()
        .filter_map(|l| {
            let refused = REFUSED.iter().any(|r| l.contains(r));
            let entry = crate::logview::parse(l);
            let (rank, key, shown) = if entry.json {
                let rank = match entry.level.as_deref() {
                    _ if refused => 0,
                    Some("ERROR") => 0,
                    Some("WARN") => 1,
                    _ => return None,
                };
                // Deduplicate on what happened, not on which request or when.
                let key = format!(
                    "{} {} {}",
                    entry.level.as_deref().unwrap_or_default(),
                    entry.target.as_deref().unwrap_or_default(),
                    entry.message.as_deref().unwrap_or_default()
                );
                (rank, key, entry.readable())
            } else {
                let rank = if l.contains("ERROR") || refused {
                    0
                } else if l.contains("WARN") {
                    1
                } else {
                    return None;
                };
                // The message without its timestamp.
                let key = l
                    .split_whitespace()
                    .skip(3)
                    .take(8)
                    .collect::<Vec<_>>()
                    .join(" ");
                (rank, key, l.to_string())
            };
            // ... and without its numbers.
            let key: String = key.chars().filter(|c| !c.is_ascii_digit()).collect();
            let short: String = shown.chars().take(220).collect();
            seen.insert(key).then_some((rank, short))
        })
        .collect();
    picked.sort_by_key(|(rank, _)| *rank);
    picked.into_iter().map(|(_, l)| l).take(5).collect()
}

#[cfg(test)]
mod tests {
    use super::error_lines;

    #[test]
    fn json_error_lines_are_picked_by_level_shown_readably_and_kept_once() {
        let logs = [
            r#"{"timestamp":"2026-12-01T00:00:01Z","level":"INFO","message":"order placed","request_id":"r-1"}"#,
            r#"{"timestamp":"2026-12-01T00:00:02Z","level":"WARN","target":"sqlx::query","message":"slow statement","request_id":"r-2"}"#,
            r#"{"timestamp":"2026-12-01T00:00:03Z","level":"ERROR","target":"svc","message":"lock timeout","request_id":"r-3"}"#,
            r#"{"timestamp":"2026-12-01T00:00:04Z","level":"ERROR","target":"svc","message":"lock timeout","request_id":"r-4"}"#,
            "[instance 1] 2026-12-01T00:00:05Z ERROR svc: text error 17",
        ]
        .join("\n");
        assert_eq!(
            error_lines(&logs),
            vec![
                "2026-12-01T00:00:03Z ERROR [r-3] lock timeout".to_string(),
                "[instance 1] 2026-12-01T00:00:05Z ERROR svc: text error 17".to_string(),
                "2026-12-01T00:00:02Z  WARN [r-2] slow statement".to_string(),
            ]
        );
    }
}
