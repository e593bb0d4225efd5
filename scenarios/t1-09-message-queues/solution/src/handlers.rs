//! `POST /orders`: record the order, queue it for the workers, answer.

use crate::app::AppState;
use crate::models::{NewOrder, Receipt};
use crate::queue::MAX_BACKLOG;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sdlab_kit::AppError;

/// `POST /orders`: records the order and queues it for shipping, answering 202 (accepted,
/// not shipped yet). An order number seen before is not recorded or queued again: the
/// answer is its current state, 200. A full queue answers 429 before anything is recorded.
pub async fn place_order(
    State(state): State<AppState>,
    Json(order): Json<NewOrder>,
) -> Result<(StatusCode, Json<Receipt>), OrderError> {
    if order.amount_cents <= 0 {
        return Err(AppError::BadRequest("amount_cents must be positive".into()).into());
    }
    // SOLUTION (bounded queue): refuse while the backlog is full, before promising anything:
    // the checkout can retry in a second, and a 429 now beats a parcel shipped ten minutes
    // late.
    if state.queue.backlog().await.map_err(AppError::from)? >= MAX_BACKLOG {
        return Err(OrderError::Full);
    }
    let recorded = sqlx::query(
        "INSERT INTO orders (id, customer_id, amount_cents) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(order.order_id)
    .bind(order.customer_id)
    .bind(order.amount_cents)
    .execute(state.db.pool())
    .await
    .map_err(AppError::from)?
    .rows_affected()
        == 1;
    if !recorded {
        let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(order.order_id)
            .fetch_one(state.db.pool())
            .await
            .map_err(AppError::from)?;
        let receipt = Receipt {
            order_id: order.order_id,
            status,
        };
        return Ok((StatusCode::OK, Json(receipt)));
    }
    // SOLUTION (queue): the slow shipping is the workers' job now. The order is in
    // PostgreSQL and in the queue before the checkout hears 202; if Redis refuses it, the
    // order is not kept either, and the checkout is told to retry.
    if let Err(e) = state.queue.push(&order).await {
        sqlx::query("DELETE FROM orders WHERE id = $1")
            .bind(order.order_id)
            .execute(state.db.pool())
            .await
            .map_err(AppError::from)?;
        return Err(AppError::from(e).into());
    }
    let receipt = Receipt {
        order_id: order.order_id,
        status: "accepted".into(),
    };
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}

/// What placing an order can fail with: our database or Redis (the kit's answer), or a full
/// queue. (The provider is the workers' business now.)
#[derive(Debug)]
pub enum OrderError {
    App(AppError),
    /// SOLUTION (bounded queue): 429 with Retry-After.
    Full,
}

impl From<AppError> for OrderError {
    fn from(e: AppError) -> Self {
        OrderError::App(e)
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        match self {
            OrderError::App(e) => e.into_response(),
            OrderError::Full => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "too many orders waiting: retry in a second",
            )
                .into_response(),
        }
    }
}
