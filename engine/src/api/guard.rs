//! The security layer in front of every route, checked in this order:
//! 1. **Host** must be `127.0.0.1:PORT` or `localhost:PORT` (the server's own port): a page on
//!    another site that rebinds its DNS name to 127.0.0.1 sends its own name as Host (403).
//! 2. **Origin**, when present, must be the lab's own origin (or one the shell registered):
//!    browsers send it on cross-site requests, so a foreign page cannot drive the API (403).
//! 3. **Token**, on `/api` only: `Authorization: Bearer <token>`, or `?token=` on the event
//!    streams (`.../stream`: EventSource cannot set headers); compared in constant time (401).
//!
//! The token is the boundary; the Host and Origin checks stop browsers being used against it.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};

pub(super) async fn guard(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    match check(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(state: &ApiState, req: &Request) -> Result<(), ApiError> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .ok_or_else(|| ApiError::Forbidden("the request has no Host header".to_string()))?;
    let allowed_hosts = [
        format!("127.0.0.1:{}", state.port),
        format!("localhost:{}", state.port),
    ];
    let own_host = allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
    if !own_host
        && !state
            .extra_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    {
        return Err(ApiError::Forbidden(format!(
            "Host {host:?} is not this lab's address (open http://127.0.0.1:{} instead)",
            state.port
        )));
    }
    if let Some(origin) = req.headers().get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let own = allowed_hosts
            .iter()
            .any(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
        if !own && !state.extra_origins.iter().any(|o| o == origin) {
            return Err(ApiError::Forbidden(format!(
                "requests from {origin:?} are not allowed: only the lab's own page may call its API"
            )));
        }
    }
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        // The query form only for event streams: a token in a URL ends up in histories and
        // logs, so it is accepted only where a header cannot be sent.
        let presented = bearer(req).or_else(|| {
            path.ends_with("/stream")
                .then(|| query_token(req))
                .flatten()
        });
        match presented {
            Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => {}
            _ => return Err(ApiError::Unauthorized),
        }
    }
    Ok(())
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn query_token(req: &Request) -> Option<&str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// Equal bytes, compared without an early exit so the time taken does not say how many
/// leading characters were right. (Only the length can leak, and it is public: 64.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_equal_only_when_every_byte_matches() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abcdef", b"abcde"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
