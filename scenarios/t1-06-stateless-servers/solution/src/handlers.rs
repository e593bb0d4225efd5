//! Logging in, the account page, and adding to the basket.

use crate::app::AppState;
use crate::sessions::CurrentUser;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sdlab_kit::AppError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
pub struct Login {
    pub user: String,
    pub password: String,
}

#[derive(Serialize)]
pub struct LoggedIn {
    pub token: String,
}

/// `POST /login`: checks the password and starts a session.
pub async fn login(
    State(state): State<AppState>,
    Json(login): Json<Login>,
) -> Result<Json<LoggedIn>, (StatusCode, &'static str)> {
    let refused = (StatusCode::UNAUTHORIZED, "wrong user or password");
    let mut conn = state.db.conn().await.map_err(|e| busy("database", &e))?;
    let row: Option<(i64, String, String)> =
        sqlx::query_as("SELECT id, salt, password_hash FROM users WHERE username = $1")
            .bind(&login.user)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| busy("database", &e))?;
    let Some((user_id, salt, hash)) = row else {
        return Err(refused);
    };
    let given = Sha256::digest(format!("{salt}:{}", login.password).as_bytes());
    let given: String = given.iter().map(|b| format!("{b:02x}")).collect();
    if given != hash {
        return Err(refused);
    }
    let token = state
        .sessions
        .create(user_id)
        .await
        .map_err(|e| busy("session store", &e))?;
    Ok(Json(LoggedIn { token }))
}

/// A 503 the client may retry; the cause goes to the log, not to the client.
fn busy(what: &str, cause: &dyn std::fmt::Debug) -> (StatusCode, &'static str) {
    tracing::error!(?cause, "login failed: {what} unavailable");
    (StatusCode::SERVICE_UNAVAILABLE, "busy, try again")
}

#[derive(Serialize, sqlx::FromRow)]
pub struct Account {
    pub user: String,
    pub name: String,
    pub cart_items: i64,
}

/// `GET /me`: the logged-in customer's account page.
pub async fn me(
    State(state): State<AppState>,
    CurrentUser(user_id): CurrentUser,
) -> Result<Json<Account>, AppError> {
    let mut conn = state.db.conn().await?;
    let account = sqlx::query_as::<_, Account>(
        "SELECT u.username AS user, u.name,
                (SELECT count(*) FROM cart_items c WHERE c.user_id = u.id) AS cart_items
         FROM users u WHERE u.id = $1",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Json(account))
}

#[derive(Deserialize)]
pub struct NewItem {
    pub product_id: i32,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct CartItem {
    pub id: i64,
    pub product_id: i32,
}

/// `POST /cart/items`: puts a product in the logged-in customer's basket.
pub async fn add_to_cart(
    State(state): State<AppState>,
    CurrentUser(user_id): CurrentUser,
    Json(item): Json<NewItem>,
) -> Result<(StatusCode, Json<CartItem>), AppError> {
    let mut conn = state.db.conn().await?;
    let added = sqlx::query_as::<_, CartItem>(
        "INSERT INTO cart_items (user_id, product_id) VALUES ($1, $2) RETURNING id, product_id",
    )
    .bind(user_id)
    .bind(item.product_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((StatusCode::CREATED, Json(added)))
}
