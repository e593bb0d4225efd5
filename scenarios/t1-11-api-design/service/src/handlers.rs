//! The payments API's three endpoints.

use crate::app::AppState;
use crate::client::ClientId;
use crate::models::{ListQuery, NewPayment, Payment, PaymentDetail};
use crate::processor::ProcessorError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sdlab_kit::AppError;

const COLUMNS: &str = "id, client_id, order_id, amount_cents, status, processor_ref";

/// `POST /payments`: records the payment, has the processor charge it, answers 201 with
/// the charged payment.
pub async fn create_payment(
    State(state): State<AppState>,
    ClientId(client): ClientId,
    Json(new): Json<NewPayment>,
) -> Result<(StatusCode, Json<Payment>), ApiError> {
    if new.amount_cents <= 0 {
        return Err(AppError::BadRequest("amount_cents must be positive".into()).into());
    }
    // One transaction: the payment is recorded charged, or not at all.
    let mut tx = state.db.pool().begin().await.map_err(AppError::from)?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO payments (client_id, order_id, amount_cents) VALUES ($1, $2, $3)
         RETURNING id",
    )
    .bind(&client)
    .bind(new.order_id)
    .bind(new.amount_cents)
    .fetch_one(&mut *tx)
    .await
    .map_err(AppError::from)?;
    let reference = state.processor.charge(&new).await?;
    let payment: Payment = sqlx::query_as(&format!(
        "UPDATE payments SET status = 'charged', processor_ref = $2 WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(reference)
    .fetch_one(&mut *tx)
    .await
    .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::from)?;
    Ok((StatusCode::CREATED, Json(payment)))
}

/// `GET /payments?limit=N`: the asking shop's latest payments, newest first (20 unless
/// `limit` says otherwise, at most 100).
pub async fn list_payments(
    State(state): State<AppState>,
    ClientId(client): ClientId,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Payment>>, AppError> {
    let limit = query.limit.unwrap_or(20).clamp(1, 100);
    let payments = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE client_id = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(&client)
    .bind(limit)
    .fetch_all(state.db.pool())
    .await?;
    Ok(Json(payments))
}

/// `GET /payments/{id}`: the payment, with its settlement as the processor reports it.
pub async fn get_payment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<PaymentDetail>, ApiError> {
    let payment: Payment = sqlx::query_as(&format!("SELECT {COLUMNS} FROM payments WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db.pool())
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::NotFound)?;
    let settlement = match payment.processor_ref {
        Some(reference) => Some(state.processor.settlement(reference).await?),
        None => None,
    };
    Ok(Json(PaymentDetail {
        payment,
        settlement,
    }))
}

/// What a handler can fail with: our database (the kit's answer), or the processor.
#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    Processor(ProcessorError),
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError::App(e)
    }
}

impl From<ProcessorError> for ApiError {
    fn from(e: ProcessorError) -> Self {
        ApiError::Processor(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::App(e) => e.into_response(),
            ApiError::Processor(ProcessorError(cause)) => {
                tracing::error!(status = 502, "{cause}");
                (StatusCode::BAD_GATEWAY, "card processor failed").into_response()
            }
        }
    }
}
