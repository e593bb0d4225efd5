//! Who is logged in: a session token, handed out at login, names a user until it expires.
//!
//! Sessions live in Redis (`session:<token>` -> user id, with the session's lifetime as its
//! TTL), not in the process: every instance sees every session, so nginx may send a user's
//! requests anywhere, and an instance that crashes or is redeployed logs nobody out. The
//! instances hold no state of their own between requests: they are stateless.

use crate::app::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use sdlab_kit::Cache;
use std::time::Duration;

/// How long a login lasts: a shop session.
const SESSION_TTL: Duration = Duration::from_secs(30 * 60);

/// The sessions, in the Redis every instance shares.
#[derive(Clone)]
pub struct Sessions {
    cache: Cache,
}

fn key(token: &str) -> String {
    format!("session:{token}")
}

impl Sessions {
    pub fn new(cache: Cache) -> Sessions {
        Sessions { cache }
    }

    /// Starts a session for `user_id` and returns its token.
    pub async fn create(&self, user_id: i64) -> Result<String, SessionError> {
        let token = new_token();
        self.cache
            .set_ex(&key(&token), &user_id.to_string(), SESSION_TTL)
            .await
            .map_err(|e| SessionError(e.to_string()))?;
        Ok(token)
    }

    /// The user a token belongs to, if its session is alive (Redis expires it by itself).
    /// Unlike a cache miss, a Redis that cannot answer is an error, not "logged out": the
    /// user gets a 503 to retry, not a login page.
    pub async fn user(&self, token: &str) -> Result<Option<i64>, SessionError> {
        let user = self
            .cache
            .get(&key(token))
            .await
            .map_err(|e| SessionError(e.to_string()))?;
        Ok(user.and_then(|id| id.parse().ok()))
    }
}

/// A session store that could not answer.
#[derive(Debug)]
pub struct SessionError(pub String);

/// 128 random bits, hex: unguessable.
pub fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The logged-in user of a request (`Authorization: Bearer <token>`); 401 without one.
pub struct CurrentUser(pub i64);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or((StatusCode::UNAUTHORIZED, "not logged in"))?;
        match state.sessions.user(token).await {
            Ok(Some(user_id)) => Ok(CurrentUser(user_id)),
            Ok(None) => Err((StatusCode::UNAUTHORIZED, "not logged in")),
            Err(SessionError(why)) => {
                tracing::error!(%why, "session lookup failed");
                Err((StatusCode::SERVICE_UNAVAILABLE, "sessions unavailable"))
            }
        }
    }
}
