//! Who is logged in: a session token, handed out at login, names a user until it expires.

use crate::app::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a login lasts, from the moment it is made: a shop session.
const SESSION_TTL: Duration = Duration::from_secs(30 * 60);

/// The sessions, kept in memory: a lookup costs nothing.
#[derive(Clone, Default)]
pub struct Sessions {
    by_token: Arc<Mutex<HashMap<String, (i64, Instant)>>>,
}

impl Sessions {
    /// Starts a session for `user_id` and returns its token.
    pub async fn create(&self, user_id: i64) -> Result<String, SessionError> {
        let token = new_token();
        self.by_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), (user_id, Instant::now() + SESSION_TTL));
        Ok(token)
    }

    /// The user a token belongs to, if its session is alive.
    pub async fn user(&self, token: &str) -> Result<Option<i64>, SessionError> {
        let sessions = self.by_token.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(sessions
            .get(token)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(user_id, _)| *user_id))
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
