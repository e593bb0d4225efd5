//! The request mix: picks a template by weight and renders it with generated parameters.
//!
//! Templates are compiled once into literal and placeholder segments, so a typo in a
//! placeholder is a plan error before the run, not a malformed request during it. All
//! randomness comes from the one seeded `StdRng` the scheduler owns, drawn in arrival order,
//! so a seed fixes the exact sequence of requests.

use rand::rngs::StdRng;
use rand::Rng;

use super::plan::{Method, ParamGen, RequestTemplate};
use super::LoadError;

/// The largest zipf `n`: the sampler precomputes a table of `n` cumulative probabilities.
pub const MAX_ZIPF_N: u64 = 10_000_000;

/// A rendered request, ready for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub method: Method,
    /// Path and query, percent-encoded, starting with `/`.
    pub path: String,
    pub body: Option<String>,
    /// The session token to send as `Authorization: Bearer <token>` (templates with `auth`).
    pub auth: Option<String>,
    /// The request ID to send, when the run sends them (`[check.request_ids]`). Boxed, so a
    /// run without IDs moves one more pointer per request, not the whole tag.
    pub request_id: Option<Box<super::request_ids::IdTag>>,
    /// The template's extra headers, rendered (empty for most: no allocation then).
    pub headers: Vec<(String, String)>,
}

impl Rendered {
    /// The same request again, as a retrying client sends it (same path, body and headers),
    /// without the original's request ID: each request of a run carries its own.
    pub fn resend(&self) -> Rendered {
        Rendered {
            method: self.method,
            path: self.path.clone(),
            body: self.body.clone(),
            auth: self.auth.clone(),
            request_id: None,
            headers: self.headers.clone(),
        }
    }
}

/// The compiled mix of a plan.
pub(crate) struct Mix {
    templates: Vec<Compiled>,
    /// Running sums of the weights, for picking by weight.
    cumulative: Vec<u64>,
    /// The logged-in users' tokens, for templates with `auth`.
    sessions: Option<super::Sessions>,
    /// Every request gets the next ID from here (None: no IDs, nothing to do per request).
    request_ids: Option<super::RequestIds>,
}

struct Compiled {
    method: Method,
    path: Vec<Segment>,
    body: Option<Vec<Segment>>,
    /// In name order; segments refer to them by index.
    params: Vec<Generator>,
    /// The parameters' names, in the same order.
    names: Vec<String>,
    /// Where the `user` parameter is (templates with `auth`: whose token to send).
    user: Option<usize>,
    /// Extra headers: each name and its value's segments.
    headers: Vec<(String, Vec<Segment>)>,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Text(String),
    Param(usize),
}

enum Generator {
    Uniform { min: i64, max: i64 },
    Zipf { cdf: Vec<f64> },
    Choice(Vec<String>),
    Sequence { next: i64 },
}

impl Mix {
    pub fn new(templates: &[RequestTemplate]) -> Result<Self, LoadError> {
        if templates.is_empty() {
            return Err(LoadError::plan(
                "mix",
                "expected at least one request template",
            ));
        }
        let mut cumulative = Vec::with_capacity(templates.len());
        let mut total = 0u64;
        for template in templates {
            total += u64::from(template.weight);
            cumulative.push(total);
        }
        if total == 0 {
            return Err(LoadError::plan(
                "mix[].weight",
                "expected at least one weight above 0",
            ));
        }
        let templates = templates
            .iter()
            .enumerate()
            .map(|(i, t)| compile(i, t))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            templates,
            cumulative,
            sessions: None,
            request_ids: None,
        })
    }

    /// Sends the templates with `auth` as the logged-in users of `sessions`.
    pub fn with_sessions(mut self, sessions: Option<super::Sessions>) -> Self {
        self.sessions = sessions;
        self
    }

    /// Sends every request with the next ID of `ids` (see `request_ids.rs`).
    pub fn with_request_ids(mut self, ids: Option<super::RequestIds>) -> Self {
        self.request_ids = ids;
        self
    }

    /// Picks a template by weight and renders it; returns its index and the request.
    pub fn sample(&mut self, rng: &mut StdRng) -> (usize, Rendered) {
        let (index, rendered, _) = self.sample_with_values(rng);
        (index, rendered)
    }

    /// As [`Mix::sample`], with each parameter's name and value (for the answers check).
    pub fn sample_with_values(
        &mut self,
        rng: &mut StdRng,
    ) -> (usize, Rendered, Vec<(String, String)>) {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let ticket = rng.gen_range(0..total);
        let index = self
            .cumulative
            .partition_point(|&sum| sum <= ticket)
            .min(self.templates.len() - 1);
        let template = &mut self.templates[index];
        let values: Vec<String> = template.params.iter_mut().map(|g| g.sample(rng)).collect();
        // User N's token; none when N is not a logged-in user (then the service says 401).
        let auth = template.user.and_then(|i| {
            let n: usize = values[i].parse().ok()?;
            self.sessions.as_ref()?.get(n.checked_sub(1)?).cloned()
        });
        let rendered = Rendered {
            method: template.method,
            path: render(&template.path, &values, percent_encode),
            body: template
                .body
                .as_ref()
                .map(|body| render(body, &values, str::to_owned)),
            auth,
            request_id: self
                .request_ids
                .as_ref()
                .map(|ids| Box::new(ids.next_tag())),
            headers: template
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), render(value, &values, str::to_owned)))
                .collect(),
        };
        let named = template.names.iter().cloned().zip(values).collect();
        (index, rendered, named)
    }
}

fn compile(index: usize, template: &RequestTemplate) -> Result<Compiled, LoadError> {
    let field = |name: &str| format!("mix[{index}] ({}).{name}", template.name);
    if !template.path.starts_with('/') {
        return Err(LoadError::plan(
            field("path"),
            format!("expected a path starting with `/`, got `{}`", template.path),
        ));
    }
    let names: Vec<&String> = template.params.keys().collect();
    let path = parse(&template.path, &names).map_err(|p| LoadError::plan(field("path"), p))?;
    // A placeholder renders as unreserved characters, so the literal text decides validity.
    let probe = render(&path, &vec!["0".to_owned(); names.len()], str::to_owned);
    if let Err(e) = probe.parse::<hyper::http::uri::PathAndQuery>() {
        return Err(LoadError::plan(
            field("path"),
            format!("not a valid URL path: {e}"),
        ));
    }
    let body = match &template.body {
        Some(body) => Some(parse(body, &names).map_err(|p| LoadError::plan(field("body"), p))?),
        None => None,
    };
    let params = template
        .params
        .iter()
        .map(|(name, gen)| {
            Generator::new(gen).map_err(|p| LoadError::plan(field(&format!("params.{name}")), p))
        })
        .collect::<Result<_, _>>()?;
    let headers = template
        .headers
        .iter()
        .map(|(name, value)| compile_header(template, &names, name, value))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|p| LoadError::plan(field("headers"), p))?;
    let names: Vec<String> = template.params.keys().cloned().collect();
    let user = if template.auth {
        let at = names.iter().position(|n| n == "user");
        if at.is_none() {
            return Err(LoadError::plan(
                field("params.user"),
                "a request sent as a logged-in user needs a `user` parameter (which user's session)",
            ));
        }
        at
    } else {
        None
    };
    Ok(Compiled {
        method: template.method,
        path,
        body,
        params,
        names,
        user,
        headers,
    })
}

/// What is wrong with a template's header as written (None: nothing): its name, or its value's
/// text, placeholders included (their braces are valid header characters). The one rule for
/// the catalog's check and the mix's compile.
pub(crate) fn header_problem(name: &str, value: &str) -> Option<String> {
    if hyper::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Some(format!("`{name}` is not an HTTP header name"));
    }
    hyper::http::HeaderValue::from_str(value).is_err().then(|| {
        format!(
            "the value of `{name}` ({value:?}) can render as something an HTTP header cannot carry (control characters or non-ASCII)"
        )
    })
}

/// One extra header: [`header_problem`], and each `choice` a placeholder in its value can take
/// a valid header value too (numbers always are).
fn compile_header(
    template: &RequestTemplate,
    names: &[&String],
    name: &str,
    value: &str,
) -> Result<(String, Vec<Segment>), String> {
    if let Some(problem) = header_problem(name, value) {
        return Err(problem);
    }
    let segments = parse(value, names)?;
    let valid = |text: &str| hyper::http::HeaderValue::from_str(text).is_ok();
    for segment in &segments {
        let ok = match segment {
            Segment::Text(_) => true,
            Segment::Param(i) => match template.params.get(names[*i].as_str()) {
                Some(ParamGen::Choice(options)) => options.iter().all(|o| valid(o)),
                _ => true,
            },
        };
        if !ok {
            return Err(format!(
                "the value of `{name}` ({value:?}) can render as something an HTTP header cannot carry (control characters or non-ASCII)"
            ));
        }
    }
    Ok((name.to_ascii_lowercase(), segments))
}

/// Splits text into literals and `{name}` placeholders. Braces that do not enclose an
/// identifier (JSON objects, `{}`) stay literal.
fn parse(text: &str, names: &[&String]) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let ident_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let ident = &after[..ident_len];
        let is_placeholder = after[ident_len..].starts_with('}')
            && ident.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if !is_placeholder {
            literal.push_str(&rest[..=open]);
            rest = after;
            continue;
        }
        let Some(param) = names.iter().position(|n| n.as_str() == ident) else {
            return Err(format!(
                "placeholder `{{{ident}}}` has no entry in params (expected one of {names:?})"
            ));
        };
        literal.push_str(&rest[..open]);
        if !literal.is_empty() {
            segments.push(Segment::Text(std::mem::take(&mut literal)));
        }
        segments.push(Segment::Param(param));
        rest = &after[ident_len + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Text(literal));
    }
    Ok(segments)
}

fn render(segments: &[Segment], values: &[String], encode: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Param(i) => out.push_str(&encode(values.get(*i).map_or("", String::as_str))),
        }
    }
    out
}

/// Encodes everything but RFC 3986 unreserved characters, so a value stays one path segment.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Generator {
    fn new(gen: &ParamGen) -> Result<Self, String> {
        Ok(match gen {
            ParamGen::Uniform { min, max } if min > max => {
                return Err(format!("expected min <= max, got min {min} and max {max}"));
            }
            ParamGen::Uniform { min, max } => Generator::Uniform {
                min: *min,
                max: *max,
            },
            ParamGen::Zipf { n, s } => {
                if !(1..=MAX_ZIPF_N).contains(n) {
                    return Err(format!("expected zipf n in 1..={MAX_ZIPF_N}, got {n}"));
                }
                if !(s.is_finite() && *s >= 0.0) {
                    return Err(format!("expected a finite zipf exponent s >= 0, got {s}"));
                }
                Generator::Zipf {
                    cdf: zipf_cdf(*n, *s),
                }
            }
            ParamGen::Choice(values) if values.is_empty() => {
                return Err("expected at least one choice".into())
            }
            ParamGen::Choice(values) => Generator::Choice(values.clone()),
            ParamGen::Sequence { start } => Generator::Sequence { next: *start },
        })
    }

    fn sample(&mut self, rng: &mut StdRng) -> String {
        match self {
            Generator::Uniform { min, max } => rng.gen_range(*min..=*max).to_string(),
            Generator::Zipf { cdf } => {
                // Inverse CDF: the first rank whose cumulative probability exceeds u.
                let u: f64 = rng.gen();
                let rank = cdf.partition_point(|&p| p <= u).min(cdf.len() - 1) + 1;
                rank.to_string()
            }
            Generator::Choice(values) => values[rng.gen_range(0..values.len())].clone(),
            Generator::Sequence { next } => {
                let value = *next;
                *next = next.wrapping_add(1);
                value.to_string()
            }
        }
    }
}

/// Cumulative probabilities of ranks `1..=n` under `P(k) ~ 1 / k^s`.
fn zipf_cdf(n: u64, s: f64) -> Vec<f64> {
    let mut cdf: Vec<f64> = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut sum = 0.0;
    for k in 1..=n {
        sum += (k as f64).powf(-s);
        cdf.push(sum);
    }
    for p in &mut cdf {
        *p /= sum;
    }
    cdf
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;

    use super::*;

    fn template(path: &str, body: Option<&str>, params: &[(&str, ParamGen)]) -> RequestTemplate {
        RequestTemplate {
            body: body.map(str::to_owned),
            params: params
                .iter()
                .map(|(n, g)| ((*n).to_owned(), g.clone()))
                .collect::<BTreeMap<_, _>>(),
            ..RequestTemplate::get("t", path)
        }
    }

    #[test]
    fn placeholders_in_path_and_body_are_filled() {
        let t = template(
            "/users/{user_id}/posts",
            Some(r#"{"title": "{title}", "n": {user_id}}"#),
            &[
                ("user_id", ParamGen::Sequence { start: 7 }),
                ("title", ParamGen::Choice(vec!["a b/c".into()])),
            ],
        );
        let mut mix = Mix::new(&[t]).unwrap();
        let (index, req) = mix.sample(&mut StdRng::seed_from_u64(0));
        assert_eq!(index, 0);
        assert_eq!(req.path, "/users/7/posts");
        assert_eq!(req.body.as_deref(), Some(r#"{"title": "a b/c", "n": 7}"#));
        assert_eq!(
            mix.sample(&mut StdRng::seed_from_u64(0)).1.path,
            "/users/8/posts"
        );
    }

    #[test]
    fn header_values_are_filled_and_bad_headers_are_plan_errors() {
        let mut t = template(
            "/orders",
            None,
            &[
                ("order", ParamGen::Sequence { start: 7 }),
                ("client", ParamGen::Choice(vec!["noisy".into()])),
            ],
        );
        t.headers = vec![
            ("Idempotency-Key".into(), "order-{order}".into()),
            ("X-Client-Id".into(), "{client}".into()),
        ];
        let mut mix = Mix::new(std::slice::from_ref(&t)).unwrap();
        let (_, req) = mix.sample(&mut StdRng::seed_from_u64(0));
        assert_eq!(
            req.headers,
            vec![
                ("idempotency-key".to_string(), "order-7".to_string()),
                ("x-client-id".to_string(), "noisy".to_string()),
            ]
        );
        for (name, value, expected) in [
            ("Bad Name", "x", "not an HTTP header name"),
            ("X-Line", "a\nb", "cannot carry"),
            ("X-Missing", "{nope}", "no entry in params"),
        ] {
            let mut bad = t.clone();
            bad.headers = vec![(name.into(), value.into())];
            let err = Mix::new(&[bad]).err().unwrap().to_string();
            assert!(err.contains(expected), "{name}: {err}");
        }
        let mut choice = t.clone();
        choice
            .params
            .insert("client".into(), ParamGen::Choice(vec!["a\r\nb".into()]));
        let err = Mix::new(&[choice]).err().unwrap().to_string();
        assert!(err.contains("cannot carry"), "{err}");
    }

    #[test]
    fn path_values_are_percent_encoded() {
        let t = template(
            "/search/{q}",
            None,
            &[("q", ParamGen::Choice(vec!["a b/c".into()]))],
        );
        let (_, req) = Mix::new(&[t])
            .unwrap()
            .sample(&mut StdRng::seed_from_u64(0));
        assert_eq!(req.path, "/search/a%20b%2Fc");
    }

    #[test]
    fn an_unknown_placeholder_is_a_plan_error() {
        let t = template(
            "/users/{id}",
            None,
            &[("user_id", ParamGen::Sequence { start: 0 })],
        );
        let err = Mix::new(&[t]).err().unwrap().to_string();
        assert!(
            err.contains("mix[0] (t).path") && err.contains("{id}"),
            "{err}"
        );
    }

    #[test]
    fn zipf_rank_one_is_the_most_likely() {
        let t = template("/k/{k}", None, &[("k", ParamGen::Zipf { n: 100, s: 1.0 })]);
        let mut mix = Mix::new(&[t]).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = vec![0u32; 101];
        for _ in 0..5000 {
            let (_, req) = mix.sample(&mut rng);
            counts[req.path.trim_start_matches("/k/").parse::<usize>().unwrap()] += 1;
        }
        assert_eq!(counts[0], 0);
        let top = (1..=100).max_by_key(|&k| counts[k]).unwrap();
        assert_eq!(top, 1);
        // P(1) = 1 / H(100) ~ 0.19.
        assert!((800..1100).contains(&counts[1]), "{}", counts[1]);
    }
}
