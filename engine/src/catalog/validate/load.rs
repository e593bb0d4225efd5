//! The load section of a scenario: `[[requests]]` (method, path, body, parameter generators,
//! every `{placeholder}` defined) and `[profiles.*]` (stages, the mix by request name, limits).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{placeholders, Ctx};
use crate::catalog::raw::{RawOracle, RawParam, RawProfile, RawRequest, RawSessions};
use crate::catalog::{CatalogError, Oracle, Profile};
use crate::load::{Method, ParamGen, RequestTemplate, Stage};

/// The most resends a `[[requests]]` entry's `retries` may ask for: each one can add a
/// timeout to the end of a load.
const MAX_RETRIES: u32 = 3;

pub(super) fn requests(
    cx: &Ctx,
    raw: Vec<RawRequest>,
    has_postgres: bool,
    sessions: Option<&RawSessions>,
) -> Result<(Vec<RequestTemplate>, BTreeMap<String, Oracle>), CatalogError> {
    let mut out: Vec<RequestTemplate> = Vec::new();
    let mut oracles = BTreeMap::new();
    for (i, r) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("requests[{i}].{f}");
        if r.name.trim().is_empty() || out.iter().any(|o| o.name == r.name) {
            return Err(cx.invalid(field("name"), format!("a unique name, got {:?}", r.name)));
        }
        let method = match r.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => {
                return Err(cx.invalid(
                    field("method"),
                    format!("GET, POST, PUT or DELETE, got {other:?}"),
                ))
            }
        };
        if !r.path.starts_with('/') {
            return Err(cx.invalid(
                field("path"),
                format!("a path starting with '/', got {:?}", r.path),
            ));
        }
        let mut params = BTreeMap::new();
        for (name, p) in r.params {
            let gen = match p {
                RawParam::Uniform([min, max]) if min <= max => ParamGen::Uniform { min, max },
                RawParam::Uniform(_) => {
                    return Err(cx.invalid(
                        field(&format!("params.{name}")),
                        "uniform = [min, max] with min <= max",
                    ))
                }
                RawParam::Zipf { n, s } if n > 0 && s > 0.0 => ParamGen::Zipf { n, s },
                RawParam::Zipf { .. } => {
                    return Err(cx.invalid(
                        field(&format!("params.{name}")),
                        "zipf = { n = <above 0>, s = <above 0> }",
                    ))
                }
                RawParam::Choice(v) if !v.is_empty() => ParamGen::Choice(v),
                RawParam::Choice(_) => {
                    return Err(cx.invalid(
                        field(&format!("params.{name}")),
                        "choice = [at least one value]",
                    ))
                }
                RawParam::Sequence(start) => ParamGen::Sequence { start },
            };
            params.insert(name, gen);
        }
        // The lab says who sends a logged-in request, and counts the users who log in.
        let login = sessions.is_some_and(|s| s.login == r.name);
        if r.auth || login {
            let Some(s) = sessions else {
                return Err(cx.invalid(
                    field("auth"),
                    "a [sessions] section saying how users log in",
                ));
            };
            if r.auth && login {
                return Err(cx.invalid(field("auth"), "false for the login request itself"));
            }
            if params.contains_key("user") {
                return Err(cx.invalid(
                    field("params.user"),
                    "no generator: the lab draws {user} (a logged-in user, or 1, 2, ... for the login)",
                ));
            }
            let gen = if login {
                ParamGen::Sequence { start: 1 }
            } else {
                ParamGen::Uniform {
                    min: 1,
                    max: i64::from(s.users),
                }
            };
            params.insert("user".to_string(), gen);
        }
        // Headers: the load generator's rule (the values' placeholders are checked with the
        // path's and the body's below).
        for (name, value) in &r.headers {
            if let Some(problem) = crate::load::header_problem(name, value) {
                return Err(cx.invalid(field(&format!("headers.{name}")), problem));
            }
        }
        // Every {placeholder} in the path, body and headers must have a generator.
        let header_values = r.headers.values().map(String::as_str);
        for text in std::iter::once(r.path.as_str())
            .chain(r.body.as_deref())
            .chain(header_values)
        {
            for placeholder in placeholders(text) {
                if !params.contains_key(placeholder) {
                    return Err(cx.invalid(
                        field("params"),
                        format!("a generator for {{{placeholder}}} used in {text:?}"),
                    ));
                }
            }
        }
        if r.retries > MAX_RETRIES {
            return Err(cx.invalid(
                field("retries"),
                format!(
                    "0 to {MAX_RETRIES} resends of an attempt that timed out, got {}",
                    r.retries
                ),
            ));
        }
        let oracle = oracle(cx, i, &r.name, r.oracle, has_postgres)?;
        oracles.insert(r.name.clone(), oracle);
        out.push(RequestTemplate {
            name: r.name,
            weight: 0,
            method,
            path: r.path,
            body: r.body,
            params,
            auth: r.auth,
            headers: r.headers.into_iter().collect(),
            retries: r.retries,
        });
    }
    if let Some(s) = sessions {
        if !out.iter().any(|r| r.name == s.login) {
            return Err(cx.invalid(
                "sessions.login",
                format!("the name of a [[requests]] entry, got {:?}", s.login),
            ));
        }
        if !(1..=10_000).contains(&s.users) {
            return Err(cx.invalid(
                "sessions.users",
                format!("between 1 and 10000, got {}", s.users),
            ));
        }
        if s.token.trim().is_empty() {
            return Err(cx.invalid(
                "sessions.token",
                "the login answer's field holding the token",
            ));
        }
    }
    Ok((out, oracles))
}

/// A request kind's `[requests.oracle]`: required, so no scenario can check speed alone.
fn oracle(
    cx: &Ctx,
    i: usize,
    name: &str,
    raw: Option<RawOracle>,
    has_postgres: bool,
) -> Result<Oracle, CatalogError> {
    let field = |f: &str| format!("requests[{i}].oracle{f}");
    let Some(raw) = raw else {
        return Err(cx.invalid(
            field(""),
            format!(
                "a [requests.oracle] for {name:?}: the SQL that tells a right answer from a wrong \
                 one ($1 the answer, $2 the parameters, $3 the status, $4 the dependency's \
                 calls; docs/AUTHORING.md, \"Oracles\")"
            ),
        ));
    };
    let sql = raw.sql.filter(|q| !q.trim().is_empty());
    match (&sql, has_postgres) {
        // With a database, the answer is judged against it: a status alone proves nothing.
        (None, true) => {
            return Err(cx.invalid(
                field(".sql"),
                "a SELECT whose first column is true for a right answer (the scenario has a database to judge answers against)",
            ))
        }
        (None, false) if raw.status.is_empty() => {
            return Err(cx.invalid(
                field(".status"),
                "the statuses a right answer may have, e.g. [200] (without a database, an oracle judges the status)",
            ))
        }
        (Some(_), false) => {
            return Err(cx.invalid(
                field(".sql"),
                "no SQL: the scenario has no [topology.postgres] to run it on (judge the status instead)",
            ))
        }
        _ => {}
    }
    if let Some(bad) = raw.status.iter().find(|s| !(100..=599).contains(*s)) {
        return Err(cx.invalid(
            field(".status"),
            format!("HTTP statuses (100 to 599), got {bad}"),
        ));
    }
    if raw.hint.trim().is_empty() {
        return Err(cx.invalid(field(".hint"), "a hint for when an answer is wrong"));
    }
    let (answers, answers_file) = match raw.answers {
        None => (None, None),
        Some(rel) => {
            let path = cx.existing_file(&field(".answers"), &rel)?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                cx.invalid(field(".answers"), format!("a readable JSON file ({e})"))
            })?;
            let map: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| {
                    cx.invalid(
                        field(".answers"),
                        format!("a JSON object of expected fields by request path ({e})"),
                    )
                })?;
            (Some(map), Some(path))
        }
    };
    Ok(Oracle {
        sql,
        statuses: raw.status,
        answers,
        answers_file,
        hint: raw.hint,
    })
}

pub(super) fn profile(
    cx: &Ctx,
    name: &str,
    raw: RawProfile,
    requests: &[RequestTemplate],
) -> Result<Profile, CatalogError> {
    let field = |f: &str| format!("profiles.{name}.{f}");
    let timeout = cx.duration(&field("timeout"), &raw.timeout)?;
    if raw.stages.is_empty() {
        return Err(cx.invalid(field("stages"), "at least one stage"));
    }
    let mut stages = Vec::new();
    let mut total = Duration::ZERO;
    for (i, s) in raw.stages.iter().enumerate() {
        let duration = cx.duration(&field(&format!("stages[{i}].duration")), &s.duration)?;
        // Saturating: two huge stages must fail the 10-minute bound below, not overflow.
        total = total.saturating_add(duration);
        let rate_ok = |r: f64| r.is_finite() && (0.0..=20_000.0).contains(&r);
        if !rate_ok(s.rate) || s.rate_from.is_some_and(|r| !rate_ok(r)) {
            return Err(cx.invalid(
                field(&format!("stages[{i}].rate")),
                "requests per second between 0 and 20000",
            ));
        }
        stages.push(Stage {
            duration,
            rate: s.rate,
            rate_from: s.rate_from,
        });
    }
    // Load the lab generates is bounded in time: ten minutes is plenty for any lesson.
    if total > Duration::from_secs(600) {
        return Err(cx.invalid(field("stages"), "a total duration of at most 10 minutes"));
    }
    let mut mix = Vec::new();
    for (req, weight) in raw.mix {
        let Some(template) = requests.iter().find(|r| r.name == req) else {
            return Err(cx.invalid(
                field(&format!("mix.{req}")),
                format!(
                    "the name of a [[requests]] entry ({})",
                    requests
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if weight > 0 {
            mix.push(RequestTemplate {
                weight,
                ..template.clone()
            });
        }
    }
    if mix.is_empty() {
        return Err(cx.invalid(field("mix"), "at least one request with a weight above 0"));
    }
    // The load generator refuses 0 slots; say so while loading, not when a check starts.
    if raw.max_in_flight == Some(0) {
        return Err(cx.invalid(field("max_in_flight"), "at least 1 request in flight"));
    }
    Ok(Profile {
        name: name.to_string(),
        description: raw.description,
        timeout,
        max_in_flight: raw.max_in_flight.unwrap_or(2_000),
        stages,
        mix,
    })
}
