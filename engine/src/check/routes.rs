//! `[check.route_metrics]`: the instances export a latency histogram labelled by route, with
//! a value for every route the check's mix hits. [`route_counts`] reads how much each label
//! value's `<histogram>_count` rose during the load (summed over instances);
//! [`route_metrics_line`] judges it against the mix's path templates. Pure.
//!
//! A request path template (`/orders/{order_id}`) matches a label value when both are equal
//! once every placeholder segment (`{..}` or `:name`) is the same placeholder, so the
//! service's own parameter names do not matter (`/orders/{id}` matches). A label value that is
//! a concrete path of a templated route (`/orders/17`) fails: one series per order is a
//! cardinality explosion, and no route's latency can be read from it.

use std::collections::BTreeMap;

use super::evaluate::result;
use super::LineResult;
use crate::metrics::PromText;

/// The rise of `<histogram>_count` during the load, by label value, over every instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteCounts {
    /// Whether any instance exports `<histogram>_count` at all (after the load).
    pub exported: bool,
    /// The rise of the series without the label.
    pub unlabelled: f64,
    /// The rise per label value.
    pub by_value: BTreeMap<String, f64>,
    /// Instances that could not be scraped after the load.
    pub unscraped: u32,
}

/// Reads the counts from each instance's scrape before and after the load (`after` None: it
/// did not answer; `before` None: count from zero).
pub fn route_counts(
    histogram: &str,
    label: &str,
    before: &[Option<PromText>],
    after: &[Option<&PromText>],
) -> RouteCounts {
    let count = format!("{histogram}_count");
    let mut counts = RouteCounts::default();
    let per_value = |m: &PromText| {
        let mut values: BTreeMap<Option<String>, f64> = BTreeMap::new();
        for (name, labels, v) in &m.samples {
            if *name == count {
                *values.entry(labels.get(label).cloned()).or_default() += v;
            }
        }
        values
    };
    for (i, a) in after.iter().enumerate() {
        let Some(a) = a else {
            counts.unscraped += 1;
            continue;
        };
        let now = per_value(a);
        counts.exported |= !now.is_empty();
        let then = before
            .get(i)
            .and_then(Option::as_ref)
            .map(per_value)
            .unwrap_or_default();
        for (value, n) in now {
            let rise = (n - then.get(&value).copied().unwrap_or(0.0)).max(0.0);
            match value {
                Some(v) => *counts.by_value.entry(v).or_default() += rise,
                None => counts.unlabelled += rise,
            }
        }
    }
    counts
}

/// A route or path with its query dropped and each placeholder segment made `{}`.
fn normalize(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|seg| {
            if (seg.starts_with('{') && seg.ends_with('}')) || seg.starts_with(':') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `value` is a concrete path of the normalized template `route` (a placeholder
/// segment of the template stands for any non-empty segment).
fn concrete_of(value: &str, route: &str) -> bool {
    let (v, r): (Vec<&str>, Vec<&str>) = (value.split('/').collect(), route.split('/').collect());
    v.len() == r.len()
        && r.contains(&"{}")
        && v.iter()
            .zip(&r)
            .all(|(v, r)| (*r == "{}" && !v.is_empty() && !v.contains('{')) || v == r)
        && normalize(value) != route
}

/// Judges the counts (None: not measured) against the mix's path templates `routes`, and
/// the sum of the matched routes' counts against `min_ratio` of the load's `answered`.
pub fn route_metrics_line(
    histogram: &str,
    label: &str,
    min_ratio: f64,
    routes: &[String],
    hint: &str,
    counts: Option<&RouteCounts>,
    answered: u64,
) -> LineResult {
    let label_text = "per-route latency histogram".to_string();
    let required = format!(
        "{histogram}{{{label}}} for every route of the mix, >= {:.0}% of the answers",
        min_ratio * 100.0
    );
    let fail =
        |measured: String| result(label_text.clone(), measured, required.clone(), false, hint);
    let Some(c) = counts else {
        return fail("not measured".to_string());
    };
    if !c.exported {
        return fail(format!("no {histogram}_count in /metrics"));
    }
    if c.by_value.is_empty() {
        return fail(format!(
            "one {histogram} without a {label} label: every route's latency in one series"
        ));
    }
    let mut wanted: Vec<String> = routes.iter().map(|r| normalize(r)).collect();
    wanted.sort();
    wanted.dedup();
    let mut matched = 0.0;
    let mut missing = Vec::new();
    for route in &wanted {
        let n: f64 = c
            .by_value
            .iter()
            .filter(|(v, _)| normalize(v) == *route)
            .map(|(_, n)| n)
            .sum();
        if n > 0.0 {
            matched += n;
        } else {
            missing.push(route.clone());
        }
    }
    let raw: Vec<&String> = c
        .by_value
        .keys()
        .filter(|v| wanted.iter().any(|r| concrete_of(v, r)))
        .collect();
    if !raw.is_empty() {
        return fail(format!(
            "{} {label} values are raw paths (e.g. {:?}), not route patterns",
            raw.len(),
            raw[0]
        ));
    }
    if !missing.is_empty() {
        return fail(format!(
            "no {label} value for {} (labelled: {})",
            missing.join(", "),
            c.by_value.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let share = if answered > 0 {
        matched / answered as f64
    } else {
        0.0
    };
    let mut measured = format!(
        "{} routes, {} of {answered} answers counted ({:.0}%)",
        wanted.len(),
        matched.round(),
        (share * 100.0).min(999.0)
    );
    if c.unscraped > 0 {
        measured.push_str(&format!("; {} instances not scraped", c.unscraped));
    }
    result(
        label_text,
        measured,
        required,
        answered > 0 && share >= min_ratio,
        hint,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "http_request_duration_seconds";

    fn scrape(lines: &[(&str, f64)]) -> PromText {
        let text: String = lines
            .iter()
            .map(|(series, v)| format!("{H}_count{series} {v}\n{H}_sum{series} 0.5\n"))
            .collect();
        PromText::parse(&text)
    }

    fn routes() -> Vec<String> {
        vec![
            "/orders/{order_id}".into(),
            "/users/{user_id}/orders".into(),
        ]
    }

    fn judge(before: &[Option<PromText>], after: &[Option<PromText>], answered: u64) -> LineResult {
        let after: Vec<Option<&PromText>> = after.iter().map(Option::as_ref).collect();
        let counts = route_counts(H, "route", before, &after);
        route_metrics_line(
            H,
            "route",
            0.95,
            &routes(),
            "per route?",
            Some(&counts),
            answered,
        )
    }

    #[test]
    fn a_histogram_per_route_pattern_counting_the_load_passes() {
        let before = [Some(scrape(&[(r#"{route="/orders/{id}"}"#, 10.0)])), None];
        let after = [
            Some(scrape(&[
                (r#"{route="/orders/{id}"}"#, 510.0),
                (r#"{route="/users/{id}/orders"}"#, 200.0),
            ])),
            Some(scrape(&[
                (r#"{route="/orders/{id}"}"#, 100.0),
                (r#"{route="/users/{id}/orders"}"#, 190.0),
            ])),
        ];
        let line = judge(&before, &after, 1000);
        assert!(line.passed, "{line:?}");
        assert_eq!(line.measured, "2 routes, 990 of 1000 answers counted (99%)");
        assert_eq!(line.label, "per-route latency histogram");
    }

    #[test]
    fn one_unlabelled_histogram_fails_with_the_hint() {
        let line = judge(&[None], &[Some(scrape(&[("", 1000.0)]))], 1000);
        assert!(!line.passed);
        assert!(
            line.measured.contains("without a route label"),
            "{}",
            line.measured
        );
        assert_eq!(line.hint.as_deref(), Some("per route?"));
    }

    #[test]
    fn a_route_of_the_mix_without_a_label_value_fails_by_name() {
        let after = [Some(scrape(&[(r#"{route="/orders/:id"}"#, 1000.0)]))];
        let line = judge(&[None], &after, 1000);
        assert!(!line.passed);
        assert_eq!(
            line.measured,
            "no route value for /users/{}/orders (labelled: /orders/:id)"
        );
    }

    #[test]
    fn raw_paths_as_label_values_fail() {
        let after = [Some(scrape(&[
            (r#"{route="/orders/17"}"#, 500.0),
            (r#"{route="/orders/{id}"}"#, 1.0),
            (r#"{route="/users/{id}/orders"}"#, 500.0),
        ]))];
        let line = judge(&[None], &after, 1000);
        assert!(!line.passed);
        assert!(line.measured.contains("raw paths"), "{}", line.measured);
    }

    #[test]
    fn too_few_counted_requests_or_no_histogram_fail() {
        let after = [Some(scrape(&[
            (r#"{route="/orders/{id}"}"#, 400.0),
            (r#"{route="/users/{id}/orders"}"#, 400.0),
        ]))];
        let line = judge(&[None], &after, 1000);
        assert!(!line.passed);
        assert_eq!(line.measured, "2 routes, 800 of 1000 answers counted (80%)");
        let nothing = judge(&[None], &[Some(PromText::parse("up 1\n"))], 1000);
        assert!(!nothing.passed);
        assert_eq!(nothing.measured, format!("no {H}_count in /metrics"));
        let unmeasured = route_metrics_line(H, "route", 0.95, &routes(), "h", None, 1000);
        assert!(!unmeasured.passed);
    }

    #[test]
    fn placeholders_and_queries_normalize_alike() {
        assert_eq!(normalize("/orders/{order_id}?full={f}"), "/orders/{}");
        assert_eq!(normalize("/orders/:id"), "/orders/{}");
        assert!(concrete_of("/orders/17", "/orders/{}"));
        assert!(!concrete_of("/orders/{}", "/orders/{}"));
        assert!(!concrete_of("/users/7", "/users"));
    }
}
