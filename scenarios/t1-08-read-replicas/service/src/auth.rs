//! Logging in and telling who is asking: a token names a member and carries a signature
//! only the service can make, so any instance can check it without looking anything up.

use crate::app::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key tokens are signed with. A real deployment reads it from its secrets; the lab's
/// ledger keeps it here so every instance and every restart accept the same tokens.
const SIGNING_KEY: &str = "ledger-lab-signing-key";

#[derive(Deserialize)]
pub struct Login {
    pub user: String,
    pub password: String,
}

#[derive(Serialize)]
pub struct LoggedIn {
    pub token: String,
}

/// `POST /login`: checks the password and answers a token for the member.
pub async fn login(
    State(state): State<AppState>,
    Json(login): Json<Login>,
) -> Result<Json<LoggedIn>, (StatusCode, &'static str)> {
    let refused = (StatusCode::UNAUTHORIZED, "wrong user or password");
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT id, salt, password_hash FROM users WHERE username = $1")
            .bind(&login.user)
            .fetch_optional(state.db.pool())
            .await
            .map_err(|cause| {
                tracing::error!(?cause, "login failed: database unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "busy, try again")
            })?;
    let Some((user_id, salt, hash)) = row else {
        return Err(refused);
    };
    if hex(&Sha256::digest(format!("{salt}:{}", login.password))) != hash {
        return Err(refused);
    }
    Ok(Json(LoggedIn {
        token: format!("{user_id}.{}", signature(user_id)),
    }))
}

/// The logged-in member of a request (`Authorization: Bearer <token>`); 401 without one.
pub struct CurrentUser(pub i64);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let not_logged_in = (StatusCode::UNAUTHORIZED, "not logged in");
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(not_logged_in)?;
        let (user, signed) = token.split_once('.').ok_or(not_logged_in)?;
        let user_id: i64 = user.parse().map_err(|_| not_logged_in)?;
        if signature(user_id) != signed {
            return Err(not_logged_in);
        }
        Ok(CurrentUser(user_id))
    }
}

fn signature(user_id: i64) -> String {
    hex(&Sha256::digest(format!("{SIGNING_KEY}:{user_id}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
