//! The Prometheus text exposition format, parsed into `(name, labels, value)` samples.

use std::collections::BTreeMap;

/// Parsed Prometheus text exposition: `(name, labels, value)` per sample line.
#[derive(Debug, Clone, Default)]
pub struct PromText {
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl PromText {
    pub fn parse(text: &str) -> PromText {
        let samples = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(parse_line)
            .collect();
        PromText { samples }
    }

    /// Whether any sample has this metric name (histograms count by their `_bucket`,
    /// `_sum` or `_count` series, too).
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| {
            n == name
                || n.strip_prefix(name)
                    .is_some_and(|rest| matches!(rest, "_bucket" | "_sum" | "_count"))
        })
    }

    /// The sum of the samples of this name whose `label` is `value` (0 when none is).
    pub fn sum_where(&self, name: &str, label: &str, value: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, labels, _)| n == name && labels.get(label).is_some_and(|v| v == value))
            .map(|(_, _, v)| v)
            .sum()
    }

    /// The sum of every sample of this exact name (over all label sets).
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = None;
        for (n, _, v) in &self.samples {
            if n == name {
                *found.get_or_insert(0.0) += v;
            }
        }
        found
    }
}

fn parse_line(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let (name_labels, rest) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}')?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], &line[space..])
        }
    };
    let value: f64 = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let mut labels = BTreeMap::new();
    let name = match name_labels.find('{') {
        None => name_labels.to_string(),
        Some(open) => {
            let inner = &name_labels[open + 1..name_labels.len() - 1];
            for pair in split_labels(inner) {
                if let Some((k, v)) = pair.split_once('=') {
                    labels.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
                }
            }
            name_labels[..open].to_string()
        }
    };
    Some((name, labels, value))
}

/// Splits `a="x",b="y,z"` on the commas outside quotes.
fn split_labels(inner: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        out.push(&inner[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_parses_names_labels_and_values() {
        let text = "# HELP db_pool_size connections\n# TYPE db_pool_size gauge\ndb_pool_size 10\n\
                    http_requests_total{route=\"/feed\",status=\"200\"} 42\n\
                    http_requests_total{route=\"/a,b\",status=\"500\"} 3\n\
                    http_request_duration_seconds_bucket{le=\"+Inf\"} 45\n";
        let p = PromText::parse(text);
        assert_eq!(p.sum("db_pool_size"), Some(10.0));
        assert_eq!(p.sum("http_requests_total"), Some(45.0));
        assert!(p.has("http_request_duration_seconds"));
        assert!(!p.has("db_pool_waiting"));
        let labels = &p.samples[2].1;
        assert_eq!(labels.get("route").map(String::as_str), Some("/a,b"));
    }
}
