//! `POST /orders`: record the order, ship it, answer.

use crate::app::AppState;
use crate::fulfilment::FulfilmentError;
use crate::models::{NewOrder, Receipt};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sdlab_kit::AppError;

/// `POST /orders`: records the order, has the fulfilment provider ship it, marks it
/// fulfilled and answers 201. An order number seen before is not recorded or shipped again:
/// the answer is its current state, 200.
pub async fn place_order(
    State(state): State<AppState>,
    Json(order): Json<NewOrder>,
) -> Result<(StatusCode, Json<Receipt>), OrderError> {
    if order.amount_cents <= 0 {
        return Err(AppError::BadRequest("amount_cents must be positive".into()).into());
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
    state.fulfilment.ship(&order).await?;
    sqlx::query("UPDATE orders SET status = 'fulfilled', fulfilled_at = now() WHERE id = $1")
        .bind(order.order_id)
        .execute(state.db.pool())
        .await
        .map_err(AppError::from)?;
    let receipt = Receipt {
        order_id: order.order_id,
        status: "fulfilled".into(),
    };
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// What placing an order can fail with: our database (the kit's answer), or the provider.
#[derive(Debug)]
pub enum OrderError {
    App(AppError),
    Fulfilment(FulfilmentError),
}

impl From<AppError> for OrderError {
    fn from(e: AppError) -> Self {
        OrderError::App(e)
    }
}

impl From<FulfilmentError> for OrderError {
    fn from(e: FulfilmentError) -> Self {
        OrderError::Fulfilment(e)
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        match self {
            OrderError::App(e) => e.into_response(),
            OrderError::Fulfilment(FulfilmentError(cause)) => {
                tracing::error!(status = 502, "{cause}");
                (StatusCode::BAD_GATEWAY, "fulfilment provider failed").into_response()
            }
        }
    }
}
