//! The fresh-reads probe (`[check.fresh_reads]`): does a read show what a write just changed?
//! After the load, `pairs` times: the read is sent to every instance (so every cache,
//! shared or in-process, holds the value from before), the write goes to one instance, then
//! the read is sent again with the write's parameters, to that instance and to the next one,
//! and each answer is judged by the read's oracle against the database the write changed.
//!
//! A cache that is never invalidated answers the old value on both; one kept in each
//! process's memory and invalidated only where the write landed answers it on the other
//! instance; a shared cache invalidated (or rewritten) on the write is right on both.
//!
//! For logged-in requests the shared parameters include `user`, so the read goes out at once
//! as the member who wrote: read-your-writes. A read served by a replica that has not applied
//! the write yet is stale (t1-08).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use super::answers::{ask, judge, params_json, prepare, wrong_answer, OracleDb};
use super::{LineResult, WrongAnswer};
use crate::catalog::Oracle;
use crate::load::{Mix, ParamGen, RequestTemplate};

/// What the probe saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FreshReads {
    /// Writes sent (each followed by its reads).
    pub writes: u32,
    /// Reads judged after a write.
    pub reads: u32,
    /// Reads that were wrong (stale, or wrong otherwise).
    pub stale: u32,
    /// Writes that were refused or answered wrongly by their own oracle.
    pub failed_writes: u32,
    /// The first wrong answer (a stale read, or a failed write).
    pub example: Option<WrongAnswer>,
}

/// Runs the probe against the instances on `ports`. Err: the oracles' database could not be
/// used.
#[allow(clippy::too_many_arguments)]
pub async fn probe(
    write: &RequestTemplate,
    read: &RequestTemplate,
    pairs: u32,
    oracles: &BTreeMap<String, Oracle>,
    ports: &[u16],
    database_url: Option<&str>,
    timeout: Duration,
    sessions: Option<&crate::load::Sessions>,
    cancel: &CancellationToken,
) -> Result<FreshReads, String> {
    let (Some(write_oracle), Some(read_oracle)) =
        (oracles.get(&write.name), oracles.get(&read.name))
    else {
        return Err(format!("no oracle for {:?} or {:?}", write.name, read.name));
    };
    if ports.is_empty() {
        return Err("no instance is running".to_string());
    }
    let db = OracleDb::connect(database_url).await?;
    let client = db.client();
    let write_sql = prepare(client, write_oracle, &write.name).await?;
    let read_sql = prepare(client, read_oracle, &read.name).await?;
    let mut writes = Mix::new(&[RequestTemplate {
        weight: 1,
        ..write.clone()
    }])
    .map_err(|e| e.to_string())?
    .with_sessions(sessions.cloned());
    // A seed of its own: other values than the answers check's, the same on every check.
    let mut rng = StdRng::seed_from_u64(11);
    let mut seen = FreshReads::default();
    for pair in 0..pairs as usize {
        if cancel.is_cancelled() {
            break;
        }
        let (_, write_request, values) = writes.sample_with_values(&mut rng);
        let read_request = {
            let mut mix = Mix::new(&[same_values(read, &values)])
                .map_err(|e| e.to_string())?
                .with_sessions(sessions.cloned());
            mix.sample_with_values(&mut rng)
        };
        let (_, read_request, read_values) = read_request;
        // Every instance reads first, so whatever it caches holds the value from before.
        for &port in ports {
            ask(port, &read_request, timeout).await;
        }
        let writer = ports[pair % ports.len()];
        let asked = ask(writer, &write_request, timeout).await;
        let write_shown = asked.shown_request.clone();
        seen.writes += 1;
        let verdict = judge(
            client.zip(write_sql.as_ref()),
            write_oracle,
            &write_request.path,
            &asked,
            &params_json(&values),
            &[],
        )
        .await?;
        if let Err(expected) = verdict {
            seen.failed_writes += 1;
            seen.example.get_or_insert_with(|| {
                wrong_answer(
                    &asked.shown_request,
                    asked.status,
                    &asked.body,
                    expected,
                    &write_oracle.hint,
                )
            });
            continue;
        }
        // The instance that took the write, then the next one (the same with one instance).
        let readers = [writer, ports[(pair + 1) % ports.len()]];
        for (i, &port) in readers.iter().enumerate() {
            if i == 1 && ports.len() == 1 {
                break;
            }
            let asked = ask(port, &read_request, timeout).await;
            seen.reads += 1;
            let verdict = judge(
                client.zip(read_sql.as_ref()),
                read_oracle,
                &read_request.path,
                &asked,
                &params_json(&read_values),
                &[],
            )
            .await?;
            if let Err(expected) = verdict {
                seen.stale += 1;
                let which = if port == writer {
                    "the instance that took the write"
                } else {
                    "another instance"
                };
                seen.example.get_or_insert_with(|| {
                    wrong_answer(
                        &format!("{} after {write_shown} (on {which})", asked.shown_request),
                        asked.status,
                        &asked.body,
                        expected,
                        &read_oracle.hint,
                    )
                });
            }
        }
    }
    Ok(seen)
}

/// `[check.fresh_reads]`: every read after a write was right.
pub fn line(seen: Option<&Result<FreshReads, String>>, hint: &str) -> LineResult {
    let label = "fresh reads after a write".to_string();
    let required = "every read right, on any instance".to_string();
    let (measured, passed, example) = match seen {
        None => ("not probed".to_string(), false, None),
        Some(Err(e)) => (format!("not probed: {e}"), false, None),
        Some(Ok(f)) if f.failed_writes > 0 => (
            format!("{} of {} writes failed", f.failed_writes, f.writes),
            false,
            f.example.as_ref(),
        ),
        Some(Ok(f)) if f.reads == 0 => ("no read judged".to_string(), false, None),
        Some(Ok(f)) => (
            format!("{} of {} reads stale", f.stale, f.reads),
            f.stale == 0,
            f.example.as_ref(),
        ),
    };
    let hint = match example {
        Some(e) => {
            let mut h = format!("{} answered {}", e.request, e.answer);
            if let Some(expected) = &e.expected {
                h.push_str(&format!("; right: {expected}"));
            }
            format!("{h}. {hint}")
        }
        None => hint.to_string(),
    };
    super::evaluate::result(label, measured, required, passed, &hint)
}

/// `read` with every parameter the write also has fixed to the write's value (the same
/// product, the same user), the others drawn as usual.
fn same_values(read: &RequestTemplate, values: &[(String, String)]) -> RequestTemplate {
    let mut read = RequestTemplate {
        weight: 1,
        ..read.clone()
    };
    for (name, value) in values {
        if let Some(gen) = read.params.get_mut(name) {
            *gen = ParamGen::Choice(vec![value.clone()]);
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_takes_the_writes_values_for_the_parameters_they_share() {
        let mut read = RequestTemplate::get("product", "/products/{product_id}?lang={lang}");
        read.params
            .insert("product_id".into(), ParamGen::Uniform { min: 1, max: 9 });
        read.params
            .insert("lang".into(), ParamGen::Choice(vec!["en".into()]));
        let fixed = same_values(
            &read,
            &[
                ("product_id".into(), "7".into()),
                ("price".into(), "1999".into()),
            ],
        );
        assert_eq!(
            fixed.params.get("product_id"),
            Some(&ParamGen::Choice(vec!["7".into()]))
        );
        assert!(!fixed.params.contains_key("price"));
        let (_, rendered, _) = Mix::new(&[fixed])
            .unwrap()
            .sample_with_values(&mut StdRng::seed_from_u64(1));
        assert_eq!(rendered.path, "/products/7?lang=en");
    }

    #[test]
    fn a_logged_in_read_after_a_write_is_sent_as_the_user_who_wrote() {
        // Read-your-writes (t1-08): the read must carry the writer's token, every time.
        let mut read = RequestTemplate::get("recent", "/me/expenses");
        read.auth = true;
        read.params
            .insert("user".into(), ParamGen::Uniform { min: 1, max: 3 });
        let fixed = same_values(
            &read,
            &[("user".into(), "2".into()), ("amount".into(), "150".into())],
        );
        let tokens = vec!["token-1".to_string(), "token-2".into(), "token-3".into()];
        let mut mix = Mix::new(&[fixed])
            .unwrap()
            .with_sessions(Some(std::sync::Arc::new(tokens)));
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20 {
            let (_, rendered, _) = mix.sample_with_values(&mut rng);
            assert_eq!(rendered.auth.as_deref(), Some("token-2"));
        }
    }
}
