//! Logging users in before a load: scenarios whose requests are made by logged-in users
//! (`[sessions]` in scenario.toml) have the lab send the login request once per user,
//! through the load's own targets, before anything is measured, and keep each user's
//! session token. Requests with `auth` then carry `Authorization: Bearer <token>` of the user
//! their `user` parameter names (`params.rs`), during the load and in the check's probes.
//!
//! Logging in is part of the service under test: a login that fails is an error with the
//! service's answer, not an empty session list.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::params::Mix;
use super::plan::{RequestTemplate, Sessions};
use super::send::{hyper_method, Target};
use super::LoadError;

/// How users log in (`[sessions]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpec {
    /// The login request; its `user` parameter counts 1, 2, ... (one request per user).
    pub login: RequestTemplate,
    /// How many users log in before each load.
    pub users: u32,
    /// The field of the login's JSON answer that holds the token.
    pub token: String,
}

/// Logs `spec.users` users in through `targets` (in turn) and returns their tokens, user N's
/// at N - 1.
pub async fn log_in(
    targets: &[String],
    spec: &SessionSpec,
    timeout: Duration,
) -> Result<Sessions, LoadError> {
    let targets = targets
        .iter()
        .map(|url| Target::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() {
        return Err(LoadError::Plan {
            field: "targets".into(),
            problem: "no target to log in through".into(),
        });
    }
    let mut mix = Mix::new(&[RequestTemplate {
        weight: 1,
        auth: false,
        ..spec.login.clone()
    }])?;
    let mut rng = StdRng::seed_from_u64(1);
    let mut tokens = Vec::with_capacity(spec.users as usize);
    for n in 0..spec.users as usize {
        let target = &targets[n % targets.len()];
        let (_, request, _) = mix.sample_with_values(&mut rng);
        let path = target.path(&request.path);
        let verb = hyper_method(request.method);
        let failed = |problem: String| LoadError::Login {
            user: n + 1,
            request: format!("{verb} {path}"),
            problem,
        };
        let (status, body) = crate::metrics::http_call(
            target.port(),
            verb.as_str(),
            &path,
            request.body.as_deref(),
            timeout,
        )
        .await
        .map_err(|e| failed(format!("no answer: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(failed(format!("answered {status} {}", short(&body))));
        }
        let token = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get(&spec.token)
                    .and_then(|t| t.as_str().map(str::to_owned))
            })
            .ok_or_else(|| {
                failed(format!(
                    "answered {status} without a string field {:?}: {}",
                    spec.token,
                    short(&body)
                ))
            })?;
        // It goes into a header as it is: no line breaks or other control characters.
        if hyper::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(failed(format!(
                "the token {:?} cannot be sent in an Authorization header",
                short(&token)
            )));
        }
        tokens.push(token);
    }
    Ok(Arc::new(tokens))
}

/// Logs in when the scenario has logins (`spec`), else None: the one call every load of the
/// lab makes before it starts (the check, `sdlab load`, the window's Run load).
pub async fn prepare(
    spec: Option<&SessionSpec>,
    targets: &[String],
    timeout: Duration,
) -> Result<Option<Sessions>, LoadError> {
    match spec {
        Some(spec) => log_in(targets, spec, timeout).await.map(Some),
        None => Ok(None),
    }
}

fn short(body: &str) -> String {
    crate::text::shorten(body, 160)
}
