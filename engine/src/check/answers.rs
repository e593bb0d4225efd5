//! The answers check: after the load, each request kind of the check's mix is sent
//! `PER_KIND` times on its own, one request at a time, and every answer is judged by the
//! kind's oracle (scenario.toml's `[requests.oracle]`): a SQL statement run on the check's
//! database right after the answer arrives, given the answer, the request's parameters, the
//! status and the calls the stub dependency received meanwhile. Optionally, fields recorded
//! from the reference solution must match too (`answers = "file"`).
//!
//! Why after the load, one at a time: nothing else writes then, so "the truth" the oracle
//! reads is the state the service answered from (a feed of the newest posts, a queue's size),
//! and the load's own figures are untouched (the check load's rate does not change: these
//! requests are not part of it). A fix that is fast because it is wrong (a canned body, a
//! worker that never calls the provider) answers wrongly here too.
//!
//! Recording: with `SDLAB_RECORD_ANSWERS=1`, a kind with an answers file gets `RECORD_PER_KIND`
//! requests and the file is rewritten from what the service answered (run it on the reference
//! solution: `sdlab check <id> --fix solution`); nothing is judged against the file then.
//!
//! Cost: `PER_KIND` requests per kind plus one SQL statement each, after the load; measured
//! 0.1 s for t1-01, t1-02 and t1-04, 2.7 s for t1-03 (its worker waits 250 ms on payments).
//! The table's last line says it on every check.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_postgres::types::{Json, Type};
use tokio_util::sync::CancellationToken;

use super::{KindAnswers, WrongAnswer};
use crate::catalog::{Oracle, Profile};
use crate::dependency::Dependency;
use crate::load::{hyper_method, Mix, Rendered, RequestTemplate};

/// Answers judged per request kind.
pub const PER_KIND: u32 = 10;
/// Requests per kind when recording an answers file: enough to see every parameter value of
/// a small range (t1-04's 50 categories) with the fixed seed.
const RECORD_PER_KIND: u32 = 600;
/// The environment variable that turns judging against answers files into recording them.
pub const RECORD_ENV: &str = "SDLAB_RECORD_ANSWERS";
/// How much of a wrong answer the table shows.
const SHOWN: usize = 240;

/// Sends each kind of `profile`'s mix to `target_port` and judges the answers on
/// `database_url` (the superuser's URL of the check's database; None for a scenario without
/// one, whose oracles judge statuses only). Err: the oracle's database could not be reached
/// or a recorded file could not be written.
pub async fn verify(
    profile: &Profile,
    oracles: &BTreeMap<String, Oracle>,
    target_port: u16,
    database_url: Option<&str>,
    dependency: Option<&Dependency>,
    sessions: Option<&crate::load::Sessions>,
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, KindAnswers>, String> {
    let db = OracleDb::connect(database_url).await?;
    let client = db.client();
    let recording = std::env::var_os(RECORD_ENV).is_some_and(|v| v == "1");
    let mut out = BTreeMap::new();
    for template in profile.mix.iter().filter(|t| t.weight > 0) {
        let Some(oracle) = oracles.get(&template.name) else {
            continue;
        };
        let statement = prepare(client, oracle, &template.name).await?;
        let record = recording && oracle.answers.is_some();
        let n = if record { RECORD_PER_KIND } else { PER_KIND };
        let mut mix = Mix::new(&[RequestTemplate {
            weight: 1,
            ..template.clone()
        }])
        .map_err(|e| e.to_string())?
        .with_sessions(sessions.cloned());
        // A seed of its own: other values than the probe's, the same on every check.
        let mut rng = StdRng::seed_from_u64(7);
        let mut kind = KindAnswers::default();
        let mut recorded = BTreeMap::new();
        for _ in 0..n {
            if cancel.is_cancelled() {
                break;
            }
            let (_, request, values) = mix.sample_with_values(&mut rng);
            let calls_before = dependency.map_or(0, Dependency::calls);
            let asked = ask(target_port, &request, profile.timeout).await;
            if record && (200..300).contains(&asked.status) {
                recorded.insert(request.path.clone(), asked.answer.clone());
                continue;
            }
            kind.checked += 1;
            let params = params_json(&values);
            // Calls the service made while answering (none may arrive after its answer).
            let calls = dependency.map_or_else(Vec::new, |d| d.calls_since(calls_before));
            let verdict = judge(
                client.zip(statement.as_ref()),
                oracle,
                &request.path,
                &asked,
                &params,
                &calls,
            )
            .await?;
            if let Err(expected) = verdict {
                kind.wrong += 1;
                if kind.example.is_none() {
                    kind.example = Some(wrong_answer(
                        &asked.shown_request,
                        asked.status,
                        &asked.body,
                        expected,
                        &oracle.hint,
                    ));
                }
            }
        }
        if record {
            write_answers(oracle, &recorded)?;
        }
        out.insert(template.name.clone(), kind);
    }
    Ok(out)
}

/// The check's database, for the oracles: one connection, closed when dropped. No client for
/// a scenario without a database (its oracles judge statuses only).
pub(super) struct OracleDb {
    client: Option<tokio_postgres::Client>,
    connection: Option<tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>>,
}

impl OracleDb {
    pub(super) async fn connect(database_url: Option<&str>) -> Result<OracleDb, String> {
        let Some(url) = database_url else {
            return Ok(OracleDb {
                client: None,
                connection: None,
            });
        };
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connect to the check's database: {e}"))?;
        Ok(OracleDb {
            client: Some(client),
            connection: Some(tokio::spawn(connection)),
        })
    }

    pub(super) fn client(&self) -> Option<&tokio_postgres::Client> {
        self.client.as_ref()
    }
}

impl Drop for OracleDb {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.abort();
        }
    }
}

/// The oracle's SQL prepared on the check's database (None: the oracle has no SQL).
pub(super) async fn prepare(
    client: Option<&tokio_postgres::Client>,
    oracle: &Oracle,
    kind: &str,
) -> Result<Option<tokio_postgres::Statement>, String> {
    match (&oracle.sql, client) {
        (Some(sql), Some(client)) => client
            .prepare_typed(sql, &[Type::JSONB, Type::JSONB, Type::INT4, Type::JSONB])
            .await
            .map(Some)
            .map_err(|e| format!("the oracle of {kind:?} does not prepare: {e}")),
        (Some(_), None) => Err(format!(
            "the oracle of {kind:?} has SQL and the scenario no database"
        )),
        (None, _) => Ok(None),
    }
}

/// One request and what came back: status 0 when no answer arrived (`body` says why).
pub(super) struct Asked {
    pub status: u16,
    pub body: String,
    /// The body as JSON (a JSON string when it is not JSON).
    pub answer: serde_json::Value,
    /// e.g. `PUT /products/7 {"price_cents": 1999}`.
    pub shown_request: String,
}

/// Sends `request` to the instance on 127.0.0.1:`port` and waits for its answer.
pub(super) async fn ask(port: u16, request: &Rendered, timeout: Duration) -> Asked {
    let verb = hyper_method(request.method);
    let sent = tokio::time::timeout(
        timeout + Duration::from_secs(1),
        crate::metrics::http_call_as(
            port,
            verb.as_str(),
            &request.path,
            request.body.as_deref(),
            request.auth.as_deref(),
            &request.headers,
            timeout,
        ),
    )
    .await;
    let shown_request = match &request.body {
        Some(body) => format!("{verb} {} {body}", request.path),
        None => format!("{verb} {}", request.path),
    };
    let (status, body) = match sent {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => (0, format!("(no answer: {e})")),
        Err(_) => (0, "(no answer in time)".to_string()),
    };
    let answer: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| serde_json::Value::String(body.clone()));
    Asked {
        status,
        body,
        answer,
        shown_request,
    }
}

/// A wrong answer as the table shows it.
pub(super) fn wrong_answer(
    request: &str,
    status: u16,
    body: &str,
    expected: Option<String>,
    hint: &str,
) -> WrongAnswer {
    WrongAnswer {
        request: shorten(request),
        answer: shorten(&if status == 0 {
            body.to_string()
        } else {
            format!("{status} {}", body.trim())
        }),
        expected: expected.map(|e| shorten(&e)),
        hint: hint.to_string(),
    }
}

/// Ok(()) when right; Err(the right answer, when known) when not. Every answer that arrived
/// goes to the oracle, whose SQL says which statuses are right (a 404 for a missing user may
/// be); no answer at all is always wrong.
pub(super) async fn judge(
    sql: Option<(&tokio_postgres::Client, &tokio_postgres::Statement)>,
    oracle: &Oracle,
    path: &str,
    asked: &Asked,
    params: &serde_json::Value,
    calls: &[serde_json::Value],
) -> Result<Result<(), Option<String>>, String> {
    if asked.status == 0 {
        return Ok(Err(None));
    }
    let (answer, status) = (&asked.answer, asked.status);
    if let Some(recorded) = oracle.answers.as_ref() {
        match recorded.get(path) {
            None => {
                return Ok(Err(Some(format!(
                    "(no recorded answer for {path} in {})",
                    oracle
                        .answers_file
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ))))
            }
            Some(expected) if !fields_match(expected, answer) => {
                return Ok(Err(Some(expected.to_string())))
            }
            Some(_) => {}
        }
    }
    if !oracle.statuses.is_empty() && !oracle.statuses.contains(&status) {
        let list: Vec<String> = oracle.statuses.iter().map(u16::to_string).collect();
        return Ok(Err(Some(format!("status {}", list.join(" or ")))));
    }
    let Some((client, statement)) = sql else {
        return Ok(Ok(()));
    };
    let status = i32::from(status);
    let calls = serde_json::Value::Array(calls.to_vec());
    let rows = client
        .query(
            statement,
            &[&Json(answer), &Json(params), &status, &Json(&calls)],
        )
        .await
        .map_err(|e| format!("the oracle's SQL failed: {e}"))?;
    let Some(row) = rows.first() else {
        return Ok(Err(None));
    };
    let right: Option<bool> = row
        .try_get(0)
        .map_err(|e| format!("the oracle's first column must be a boolean: {e}"))?;
    if right == Some(true) {
        return Ok(Ok(()));
    }
    let expected: Option<String> = if row.len() > 1 {
        row.try_get(1).ok().flatten()
    } else {
        None
    };
    Ok(Err(expected))
}

/// Every field of `expected` (an object) is in `answer` with the same value; any other
/// expected value must equal the answer.
fn fields_match(expected: &serde_json::Value, answer: &serde_json::Value) -> bool {
    match expected {
        serde_json::Value::Object(fields) => fields
            .iter()
            .all(|(k, v)| answer.get(k).is_some_and(|a| a == v)),
        other => other == answer,
    }
}

/// Rewrites the kind's answers file from the reference's answers (the recorded fields are
/// the ones the file had, or the whole answer for a new file).
fn write_answers(
    oracle: &Oracle,
    recorded: &BTreeMap<String, serde_json::Value>,
) -> Result<(), String> {
    let Some(file) = &oracle.answers_file else {
        return Ok(());
    };
    let keep: Option<Vec<String>> = oracle
        .answers
        .as_ref()
        .and_then(|a| a.values().next())
        .and_then(|v| v.as_object())
        .map(|o| o.keys().cloned().collect());
    let trimmed: BTreeMap<&String, serde_json::Value> = recorded
        .iter()
        .map(|(path, answer)| {
            let value = match (&keep, answer.as_object()) {
                (Some(keys), Some(obj)) => serde_json::Value::Object(
                    obj.iter()
                        .filter(|(k, _)| keys.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                _ => answer.clone(),
            };
            (path, value)
        })
        .collect();
    let text = serde_json::to_string_pretty(&trimmed).map_err(|e| e.to_string())?;
    std::fs::write(file, text + "\n")
        .map_err(|e| format!("write the recorded answers to {}: {e}", file.display()))
}

/// The request's parameters as a JSON object: integers as numbers, the rest as strings.
pub(super) fn params_json(values: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|(name, value)| {
                let v = value
                    .parse::<i64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
                (name.clone(), v)
            })
            .collect(),
    )
}

/// What the table shows of a request, an answer or the right answer.
fn shorten(text: &str) -> String {
    crate::text::shorten(text, SHOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_fields_must_match_and_others_are_free() {
        let expected = serde_json::json!({"digest": "ab12"});
        assert!(fields_match(
            &expected,
            &serde_json::json!({"digest": "ab12", "products": 200})
        ));
        assert!(!fields_match(
            &expected,
            &serde_json::json!({"digest": "ffff"})
        ));
        assert!(!fields_match(
            &expected,
            &serde_json::json!({"products": 200})
        ));
    }

    #[test]
    fn parameters_become_numbers_where_they_are_integers() {
        let p = params_json(&[
            ("user_id".into(), "42".into()),
            ("email".into(), "user1@example.com".into()),
        ]);
        assert_eq!(
            p,
            serde_json::json!({"user_id": 42, "email": "user1@example.com"})
        );
    }

    #[test]
    fn long_answers_are_shortened_on_one_line() {
        let long = format!("{{\n \"a\": \"{}\"\n}}", "x".repeat(400));
        let s = shorten(&long);
        assert!(s.ends_with('…') && !s.contains('\n'), "{s}");
        assert_eq!(s.chars().count(), SHOWN + 1);
    }
}
