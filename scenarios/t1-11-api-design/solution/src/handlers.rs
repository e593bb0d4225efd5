//! The payments API's three endpoints.

use crate::app::AppState;
use crate::client::ClientId;
use crate::models::{ListQuery, NewPayment, Payment, PaymentDetail};
use crate::processor::ProcessorError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sdlab_kit::AppError;

const COLUMNS: &str = "id, client_id, order_id, amount_cents, status, processor_ref";

/// `POST /payments`: charges each payment once per `Idempotency-Key`. The first request
/// with a key claims it (a pending payment row), charges, and answers 201. A request that
/// repeats the key is answered from what the first did: the stored payment (200) once it is
/// done, 409 while the first is still at the processor. Without a key every request is a new
/// payment.
pub async fn create_payment(
    State(state): State<AppState>,
    ClientId(client): ClientId,
    headers: HeaderMap,
    Json(new): Json<NewPayment>,
) -> Result<(StatusCode, Json<Payment>), ApiError> {
    if new.amount_cents <= 0 {
        return Err(AppError::BadRequest("amount_cents must be positive".into()).into());
    }
    let key = idempotency_key(&headers);
    // SOLUTION (idempotency): claim the key before charging. Of two requests with the same
    // key, the unique index lets exactly one INSERT through, however close together they
    // come; a key written down only after the charge leaves a window for the retry.
    // SOLUTION (no transaction across a call): a statement of its own, committed at once. A
    // transaction held open while the processor is slow holds a pool connection with it, and
    // five of those stop every endpoint.
    let claimed: Option<Payment> = sqlx::query_as(&format!(
        "INSERT INTO payments (client_id, order_id, amount_cents, idempotency_key)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (client_id, idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(&client)
    .bind(new.order_id)
    .bind(new.amount_cents)
    .bind(&key)
    .fetch_optional(state.db.pool())
    .await
    .map_err(AppError::from)?;
    let Some(pending) = claimed else {
        let earlier: Payment = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM payments WHERE client_id = $1 AND idempotency_key = $2"
        ))
        .bind(&client)
        .bind(&key)
        .fetch_one(state.db.pool())
        .await
        .map_err(AppError::from)?;
        return replay(earlier, &new);
    };
    // SOLUTION (finish what was started): charged and recorded in a task of its own. When the
    // client gives up (its timeout closes the connection), axum drops this handler, but the
    // charge the processor is already making must still be recorded, or the payment stays
    // pending forever.
    let charge = tokio::spawn(charge_and_record(state, pending.id, new));
    match charge.await {
        Ok(charged) => Ok((StatusCode::CREATED, Json(charged?))),
        Err(e) => Err(ProcessorError(format!("charge task: {e}")).into()),
    }
}

/// Has the processor charge the claimed payment `id`, and records the outcome.
async fn charge_and_record(state: AppState, id: i64, new: NewPayment) -> Result<Payment, ApiError> {
    match state.processor.charge(&new).await {
        Ok(reference) => {
            let payment = sqlx::query_as(&format!(
                "UPDATE payments SET status = 'charged', processor_ref = $2 WHERE id = $1
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(reference)
            .fetch_one(state.db.pool())
            .await
            .map_err(AppError::from)?;
            Ok(payment)
        }
        Err(e) => {
            // Recorded, so a retry with this key gets this answer rather than a second try;
            // the shop starts over with a new key.
            sqlx::query("UPDATE payments SET status = 'failed' WHERE id = $1")
                .bind(id)
                .execute(state.db.pool())
                .await
                .map_err(AppError::from)?;
            Err(e.into())
        }
    }
}

/// The answer to a request that repeats a key: what the first request made of it.
fn replay(earlier: Payment, new: &NewPayment) -> Result<(StatusCode, Json<Payment>), ApiError> {
    if earlier.order_id != new.order_id || earlier.amount_cents != new.amount_cents {
        return Err(ApiError::KeyReused);
    }
    match earlier.status.as_str() {
        "pending" => Err(ApiError::InProgress),
        _ => Ok((StatusCode::OK, Json(earlier))),
    }
}

/// The `Idempotency-Key` header's value, when there is one.
fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
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

/// `GET /payments/{id}`: the payment, with its settlement as the processor reports it, or
/// without it, marked `degraded`, when the processor does not answer within its deadline.
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
    let (settlement, degraded) = match payment.processor_ref {
        Some(reference) => match state.processor.settlement(reference).await {
            Ok(status) => (Some(status), false),
            // SOLUTION (degrade): the processor is slow or down. Answer with what we know, and
            // say so: a missing settlement marked as missing, not an error for the whole page.
            Err(ProcessorError(cause)) => {
                tracing::warn!(id, "settlement unavailable, answering degraded: {cause}");
                (None, true)
            }
        },
        None => (None, false),
    };
    Ok(Json(PaymentDetail {
        payment,
        settlement,
        degraded,
    }))
}

/// What a handler can fail with: our database (the kit's answer), the processor, or a key
/// that is in use.
#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    Processor(ProcessorError),
    /// The first request with this key is still being charged: 409, try again shortly.
    InProgress,
    /// The key was used for another payment: 422.
    KeyReused,
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
            ApiError::InProgress => (
                StatusCode::CONFLICT,
                [("retry-after", "1")],
                "a request with this Idempotency-Key is still in progress",
            )
                .into_response(),
            ApiError::KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "this Idempotency-Key was used for another payment",
            )
                .into_response(),
        }
    }
}
