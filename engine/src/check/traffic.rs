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
}
