//! Lines about where the load's answers came from and what they said: how many had a given
//! status (`[[check.responses]]`, e.g. 401 when users were logged out), and how many of one
//! request kind were answered in front of the instances (`[check.edge_cache]`: nginx's cache
//! serving static files). Pure: judged from `Observations`.

use std::collections::BTreeMap;

use super::evaluate::result;
use super::run::REQUESTS_TOTAL;
use super::{LineResult, Observations};
use crate::catalog::CheckLine;
use crate::metrics::PromText;

/// Requests the instances served during the load for each route an edge-cache line names:
/// the rise of their `http_requests_total{route}` from `before` to `after` (the killed
/// instance's last scrape stands for its end). None for a route no instance labels (renamed,
/// or served outside the kit's middleware: it would count as never reached) or when an
/// instance could not be counted.
pub fn route_served(
    lines: &[CheckLine],
    before: &[Option<PromText>],
    after: &[Option<&PromText>],
) -> BTreeMap<String, Option<f64>> {
    lines
        .iter()
        .filter_map(|l| match l {
            CheckLine::EdgeCache { route, .. } => Some(route.clone()),
            _ => None,
        })
        .map(|route| {
            let of = |m: &PromText| m.sum_where(REQUESTS_TOTAL, "route", &route);
            let labelled = after.iter().flatten().any(|m| {
                m.samples.iter().any(|(n, labels, _)| {
                    n == REQUESTS_TOTAL && labels.get("route").is_some_and(|r| *r == route)
                })
            });
            let total: Option<f64> = labelled
                .then(|| {
                    before
                        .iter()
                        .zip(after)
                        .map(|(b, a)| Some((of((*a)?) - b.as_ref().map_or(0.0, of)).max(0.0)))
                        .sum()
                })
                .flatten();
            (route, total)
        })
        .collect()
}

/// `[[check.responses]]`: answers with `status` during the load, at most `max`.
pub fn responses_line(status: u16, max: u64, hint: &str, obs: &Observations) -> LineResult {
    let count = obs
        .errors
        .get(&crate::load::status_label(status))
        .copied()
        .unwrap_or(0);
    let mut measured = format!("{count} of {}", obs.overall.sent);
    if let Some(k) = &obs.killed {
        measured.push_str(&format!(
            " (instance {} killed at {:.0} s)",
            k.instance,
            k.at.as_secs_f64()
        ));
    }
    result(
        format!("answers with status {status}"),
        measured,
        format!("<= {max}"),
        obs.overall.sent > 0 && count <= max,
        hint,
    )
}

/// The share of a rate-limited kind's requests that may fail otherwise than with 429 (a
/// timeout while the limiter's store blinks): a limiter answers 429, it does not time out.
const OTHER_FAILURES: f64 = 0.01;

/// `[check.rate_limit]`: the kind got at most `max_rate` successful answers per second, and
/// the rest were refused with 429, e.g. "10.4/s of 48.2/s sent; 451 refused with 429, 0
/// failed otherwise".
pub fn rate_limit_line(request: &str, max_rate: f64, hint: &str, obs: &Observations) -> LineResult {
    let slice = obs.per_request.get(request).cloned().unwrap_or_default();
    let other = slice.failed.saturating_sub(slice.too_many);
    let sent_rate = if slice.sent > slice.failed && slice.ok_rate > 0.0 {
        // The kind's own offered rate, from its successful share of the answers.
        slice.ok_rate * slice.sent as f64 / (slice.sent - slice.failed) as f64
    } else {
        0.0
    };
    let mut measured = format!("{:.1}/s answered", slice.ok_rate);
    if sent_rate > 0.0 {
        measured.push_str(&format!(" of {sent_rate:.1}/s sent"));
    }
    measured.push_str(&format!(
        "; {} refused with 429, {other} failed otherwise",
        slice.too_many
    ));
    result(
        format!("{request} held to its limit"),
        measured,
        format!("<= {max_rate:.1}/s, the rest 429"),
        slice.sent > 0
            && slice.ok_rate <= max_rate
            && other as f64 <= OTHER_FAILURES * slice.sent as f64,
        hint,
    )
}

/// `[check.edge_cache]`: the share of `request`'s answers the instances did not serve.
pub fn edge_cache_line(
    request: &str,
    route: &str,
    min_ratio: f64,
    hint: &str,
    obs: &Observations,
) -> LineResult {
    let label = format!("{request} answered in front of the instances");
    let required = format!(">= {:.0}%", min_ratio * 100.0);
    let answered = obs
        .per_request
        .get(request)
        .map_or(0, |r| r.sent.saturating_sub(r.failed));
    let reached = obs.route_served.get(route).copied().flatten();
    let (measured, passed) = match reached {
        _ if answered == 0 => (format!("no answer to {request}"), false),
        None => (
            format!("not counted: no instance's http_requests_total has route=\"{route}\" (or an instance did not answer)"),
            false,
        ),
        Some(reached) => {
            let share = (1.0 - reached / answered as f64).max(0.0);
            (
                format!(
                    "{:.1}% ({answered} answered, {reached:.0} reached the instances)",
                    share * 100.0
                ),
                share >= min_ratio,
            )
        }
    };
    result(label, measured, required, passed, hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Killed, RequestObs};
    use std::time::Duration;

    #[test]
    fn logged_out_answers_are_counted_by_status() {
        let mut obs = Observations {
            overall: RequestObs {
                sent: 1000,
                ..RequestObs::default()
            },
            ..Observations::default()
        };
        obs.errors.insert("http 401".into(), 12);
        obs.killed = Some(Killed {
            instance: 2,
            at: Duration::from_secs(6),
        });
        let line = responses_line(401, 0, "h", &obs);
        assert!(!line.passed, "{line:?}");
        assert_eq!(line.measured, "12 of 1000 (instance 2 killed at 6 s)");
        obs.errors.clear();
        assert!(responses_line(401, 0, "h", &obs).passed);
    }

    #[test]
    fn the_edge_share_is_what_the_instances_did_not_count() {
        let mut obs = Observations::default();
        obs.per_request.insert(
            "asset".into(),
            RequestObs {
                sent: 1000,
                failed: 0,
                ..RequestObs::default()
            },
        );
        obs.route_served.insert("/static/{file}".into(), Some(30.0));
        let line = edge_cache_line("asset", "/static/{file}", 0.9, "h", &obs);
        assert!(line.passed, "{line:?}");
        assert!(line.measured.starts_with("97.0%"), "{}", line.measured);
        obs.route_served
            .insert("/static/{file}".into(), Some(1000.0));
        assert!(!edge_cache_line("asset", "/static/{file}", 0.9, "h", &obs).passed);
        obs.route_served.insert("/static/{file}".into(), None);
        assert!(!edge_cache_line("asset", "/static/{file}", 0.9, "h", &obs).passed);
    }

    #[test]
    fn a_rate_limited_client_passes_only_when_held_to_its_rate_and_refused_with_429() {
        let noisy = |ok_rate: f64, failed: u64, too_many: u64| {
            let mut obs = Observations::default();
            obs.per_request.insert(
                "pay_noisy".into(),
                RequestObs {
                    sent: 500,
                    failed,
                    too_many,
                    ok_rate,
                    ..RequestObs::default()
                },
            );
            rate_limit_line("pay_noisy", 13.0, "h", &obs)
        };
        // 100 of 500 answered in 10 s, the other 400 refused with 429: held.
        let held = noisy(10.0, 400, 400);
        assert!(held.passed, "{held:?}");
        assert_eq!(held.label, "pay_noisy held to its limit");
        assert_eq!(
            held.measured,
            "10.0/s answered of 50.0/s sent; 400 refused with 429, 0 failed otherwise"
        );
        assert_eq!(held.required, "<= 13.0/s, the rest 429");
        // No limiter: everything answered.
        assert!(!noisy(50.0, 0, 0).passed);
        // Two instances each with its own bucket: twice the limit gets through.
        assert!(!noisy(20.0, 300, 300).passed);
        // Held, but by timeouts or 503s instead of 429s.
        let timed_out = noisy(10.0, 400, 0);
        assert!(!timed_out.passed);
        assert!(timed_out
            .measured
            .ends_with("0 refused with 429, 400 failed otherwise"));
        // Never sent: nothing to judge.
        assert!(!rate_limit_line("pay_noisy", 13.0, "h", &Observations::default()).passed);
    }
}
