//! Lines about the instances and what they did: the answers they served themselves, calls per
//! key to the stub dependency, every instance up, and the load balanced between them. Pure:
//! judged from `Observations`.

use super::evaluate::result;
use super::{DependencyCalls, LineResult, Observations};
use crate::catalog::{DependencyFault, FaultAnswer};

/// The instances' own request counters against the answers the load got.
pub(super) fn served(min_ratio: f64, hint: &str, obs: &Observations) -> LineResult {
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
pub(super) fn dependency_calls(max_per_key: u64, hint: &str, obs: &Observations) -> LineResult {
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
    let measured = match &d.fault {
        Some((fault, calls)) => format!("{measured}; {}", fault_note(fault, *calls)),
        None => measured,
    };
    result(
        format!("{} calls per {}", d.name, d.key),
        measured,
        format!("<= {max_per_key} per {}", d.key),
        most <= max_per_key,
        hint,
    )
}

/// What the scheduled fault did, e.g. "31 answered 3.0 s late at 9-10 s".
fn fault_note(fault: &DependencyFault, calls: u64) -> String {
    let from = fault.at.as_secs_f64();
    let to = (fault.at + fault.lasting).as_secs_f64();
    match fault.answer {
        FaultAnswer::Late(by) => {
            format!(
                "{calls} answered {:.1} s late at {from:.0}-{to:.0} s",
                by.as_secs_f64()
            )
        }
        FaultAnswer::Down => format!("{calls} refused (503) at {from:.0}-{to:.0} s"),
    }
}

/// Every instance answered the final scrape.
pub(super) fn instances_up(hint: &str, obs: &Observations) -> LineResult {
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
pub(super) fn balance(
    served: &[Option<f64>],
    min_instances: u32,
    tolerance: f64,
    hint: &str,
) -> LineResult {
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

/// The stub dependency's calls during the check (its count per key now, less `before`), when
/// the scenario names the key its calls are counted by.
pub(super) fn dependency_calls_since(
    dep: Option<&crate::dependency::Dependency>,
    before: Option<std::collections::HashMap<String, u64>>,
    fault: Option<(DependencyFault, u64)>,
) -> Option<DependencyCalls> {
    let (dep, before) = (dep?, before?);
    let key = dep.spec.key.as_ref()?;
    let mut calls = 0;
    let mut keys = 0;
    let mut most: Option<(String, u64)> = None;
    for (k, n) in dep.calls_per_key() {
        let n = n - before.get(&k).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        calls += n;
        keys += 1;
        if most.as_ref().is_none_or(|(_, m)| n > *m) {
            most = Some((k, n));
        }
    }
    Some(DependencyCalls {
        name: dep.spec.name.clone(),
        key: key.clone(),
        calls,
        keys,
        most,
        fault,
    })
}
