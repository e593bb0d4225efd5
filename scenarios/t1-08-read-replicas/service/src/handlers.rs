//! The ledger's pages: a member's spending summary and latest expenses, and recording a
//! new expense.

use crate::app::AppState;
use crate::auth::CurrentUser;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use sdlab_kit::AppError;
use serde::{Deserialize, Serialize};

#[derive(Serialize, sqlx::FromRow)]
pub struct CategoryTotal {
    pub category: String,
    pub count: i64,
    pub total_cents: i64,
}

#[derive(Serialize)]
pub struct Summary {
    pub count: i64,
    pub total_cents: i64,
    pub categories: Vec<CategoryTotal>,
}

/// `GET /me/summary`: everything the member spent, by category. Adds up all of their
/// expenses (about 2,000 each), the most expensive page of the ledger.
pub async fn summary(
    State(state): State<AppState>,
    CurrentUser(user_id): CurrentUser,
) -> Result<Json<Summary>, AppError> {
    let mut conn = state.db.conn().await?;
    let categories = sqlx::query_as::<_, CategoryTotal>(
        "SELECT category, count(*) AS count, sum(amount_cents)::bigint AS total_cents
         FROM expenses WHERE user_id = $1
         GROUP BY category ORDER BY category",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(Summary {
        count: categories.iter().map(|c| c.count).sum(),
        total_cents: categories.iter().map(|c| c.total_cents).sum(),
        categories,
    }))
}

#[derive(Serialize, sqlx::FromRow)]
pub struct Expense {
    pub id: i64,
    pub category: String,
    pub amount_cents: i32,
    pub note: String,
    pub spent_at: DateTime<Utc>,
}

/// `GET /me/expenses`: the member's 20 latest expenses, newest first.
pub async fn recent(
    State(state): State<AppState>,
    CurrentUser(user_id): CurrentUser,
) -> Result<Json<Vec<Expense>>, AppError> {
    let mut conn = state.db.conn().await?;
    let expenses = sqlx::query_as::<_, Expense>(
        "SELECT id, category, amount_cents, note, spent_at
         FROM expenses WHERE user_id = $1
         ORDER BY spent_at DESC, id DESC LIMIT 20",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(expenses))
}

#[derive(Deserialize)]
pub struct NewExpense {
    pub category: String,
    pub amount_cents: i32,
    pub note: String,
}

/// `POST /me/expenses`: records an expense, spent now.
pub async fn add_expense(
    State(state): State<AppState>,
    CurrentUser(user_id): CurrentUser,
    Json(new): Json<NewExpense>,
) -> Result<(StatusCode, Json<Expense>), AppError> {
    if new.amount_cents <= 0 {
        return Err(AppError::BadRequest("amount_cents must be above 0".into()));
    }
    let mut conn = state.db.conn().await?;
    let added = sqlx::query_as::<_, Expense>(
        "INSERT INTO expenses (user_id, category, amount_cents, note) VALUES ($1, $2, $3, $4)
         RETURNING id, category, amount_cents, note, spent_at",
    )
    .bind(user_id)
    .bind(&new.category)
    .bind(new.amount_cents)
    .bind(&new.note)
    .fetch_one(&mut *conn)
    .await?;
    Ok((StatusCode::CREATED, Json(added)))
}
