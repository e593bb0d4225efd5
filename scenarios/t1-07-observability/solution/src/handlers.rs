//! The three endpoints: place an order, an account's summary, an account's recent orders.

use crate::app::AppState;
use crate::models::{AccountSummary, NewOrder, Order};
use crate::payments::PaymentError;
use crate::request_id::RequestId;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use sdlab_kit::AppError;
use sqlx::Connection;

/// `POST /orders`: authorizes the amount with the payments provider, then records the order
/// and adds it to the account's open amount, in one transaction. Answers 201 with the order.
pub async fn place_order(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Json(new): Json<NewOrder>,
) -> Result<(StatusCode, Json<Order>), OrderError> {
    if new.amount_cents <= 0 {
        return Err(AppError::BadRequest("amount_cents must be positive".into()).into());
    }
    // The provider first, holding no connection: its round trip is not the database's time.
    state
        .payments
        .authorize(&request_id, new.account_id, new.amount_cents)
        .await?;
    let mut conn = state.db.conn().await?;
    let mut tx = conn.begin().await.map_err(AppError::from)?;
    let updated = sqlx::query("UPDATE accounts SET open_cents = open_cents + $2 WHERE id = $1")
        .bind(new.account_id)
        .bind(new.amount_cents)
        .execute(&mut *tx)
        .await
        .map_err(AppError::from)?;
    if updated.rows_affected() == 0 {
        return Err(AppError::NotFound.into());
    }
    let order: Order = sqlx::query_as(
        "INSERT INTO orders (account_id, amount_cents) VALUES ($1, $2)
         RETURNING id, account_id, amount_cents, status",
    )
    .bind(new.account_id)
    .bind(new.amount_cents)
    .fetch_one(&mut *tx)
    .await
    .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::from)?;
    // SOLUTION (JSON logs): fields, not text: a log view can filter on them.
    tracing::info!(
        order_id = order.id,
        account_id = order.account_id,
        "order placed"
    );
    Ok((StatusCode::CREATED, Json(order)))
}

/// `GET /accounts/{account_id}`: what the account has open and captured, and its order count.
pub async fn account(
    State(state): State<AppState>,
    Path(account_id): Path<i64>,
) -> Result<Json<AccountSummary>, AppError> {
    let mut conn = state.db.conn().await?;
    let summary: Option<AccountSummary> = sqlx::query_as(
        "SELECT a.id, a.name, a.open_cents, a.captured_cents,
                (SELECT count(*) FROM orders o WHERE o.account_id = a.id) AS orders
         FROM accounts a WHERE a.id = $1",
    )
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    summary.map(Json).ok_or(AppError::NotFound)
}

/// `GET /accounts/{account_id}/orders`: the account's ten newest orders, newest first.
pub async fn recent_orders(
    State(state): State<AppState>,
    Path(account_id): Path<i64>,
) -> Result<Json<Vec<Order>>, AppError> {
    let mut conn = state.db.conn().await?;
    let orders: Vec<Order> = sqlx::query_as(
        "SELECT id, account_id, amount_cents, status FROM orders
         WHERE account_id = $1 ORDER BY id DESC LIMIT 10",
    )
    .bind(account_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(orders))
}

/// What can go wrong placing an order: the database, or the payments provider.
pub enum OrderError {
    Db(AppError),
    Payments(PaymentError),
}

impl From<AppError> for OrderError {
    fn from(e: AppError) -> Self {
        OrderError::Db(e)
    }
}

impl From<PaymentError> for OrderError {
    fn from(e: PaymentError) -> Self {
        OrderError::Payments(e)
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        match self {
            OrderError::Db(e) => e.into_response(),
            OrderError::Payments(e) => e.into_response(),
        }
    }
}
