//! `POST /events`: record the event, hand it to every subscriber, answer.

use crate::app::AppState;
use crate::models::{Event, Receipt};
use crate::subscribers::{deliver, SUBSCRIBERS};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sdlab_kit::AppError;

/// `POST /events`: records the event, has billing, email and analytics handle it one after
/// the other, and answers 201. An event number seen before is not recorded or handled again.
pub async fn publish(
    State(state): State<AppState>,
    Json(event): Json<Event>,
) -> Result<(StatusCode, Json<Receipt>), Response> {
    let recorded = sqlx::query(
        "INSERT INTO events (id, account_id, amount_cents) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(event.event_id)
    .bind(event.account_id)
    .bind(event.amount_cents)
    .execute(state.db.pool())
    .await
    .map_err(|e| AppError::from(e).into_response())?
    .rows_affected()
        == 1;
    let receipt = Receipt {
        event_id: event.event_id,
        status: "published".into(),
    };
    if !recorded {
        return Ok((StatusCode::OK, Json(receipt)));
    }
    for subscriber in SUBSCRIBERS {
        if let Err(e) = deliver(&state.db, &state.notify, subscriber, &event).await {
            tracing::error!(event_id = event.event_id, "{}", e.0);
            return Err((StatusCode::BAD_GATEWAY, "a subscriber failed").into_response());
        }
    }
    Ok((StatusCode::CREATED, Json(receipt)))
}
