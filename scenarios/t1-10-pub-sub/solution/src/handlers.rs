//! `POST /events`: record the event, publish it on the topic, answer.

use crate::app::AppState;
use crate::models::{Event, Receipt};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sdlab_kit::AppError;

/// `POST /events`: records the event, publishes it on the topic and answers 202: the
/// subscribers handle it in their own time. An event number seen before is not published again.
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
    // SOLUTION (topic): one XADD, whatever the number of subscribers; the publisher no
    // longer waits for any of them.
    if let Err(e) = state.topic.publish(&event).await {
        // Not published: undo the record, so a retry of the POST publishes it.
        let _ = sqlx::query("DELETE FROM events WHERE id = $1")
            .bind(event.event_id)
            .execute(state.db.pool())
            .await;
        return Err(AppError::from(e).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}
