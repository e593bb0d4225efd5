//! The three endpoints: enqueue a job, process the next one (what a worker calls in a
//! loop), and the queue's size.

use crate::app::AppState;
use crate::models::{Job, NewJob, QueueStats};
use crate::payments::PaymentError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sdlab_kit::AppError;
use sqlx::Connection;
use std::time::Duration;

/// `POST /jobs`: adds a job at the end of the queue and answers its id.
pub async fn enqueue(
    State(state): State<AppState>,
    Json(job): Json<NewJob>,
) -> Result<(StatusCode, Json<i64>), AppError> {
    if job.amount_cents <= 0 {
        return Err(AppError::BadRequest("amount_cents must be positive".into()));
    }
    let mut conn = state.db.conn().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO jobs (account_id, amount_cents) VALUES ($1, $2) RETURNING id",
    )
    .bind(job.account_id)
    .bind(job.amount_cents)
    .fetch_one(&mut *conn)
    .await?;
    Ok((StatusCode::CREATED, Json(id)))
}

/// `POST /jobs/next`: takes the oldest queued job, charges it, and removes it from the queue.
/// Answers the job charged, or 204 when the queue is empty.
///
/// Several workers run this at once. `FOR UPDATE SKIP LOCKED` makes each take a different
/// job: a row another worker has locked is skipped, not waited for.
pub async fn process_next(State(state): State<AppState>) -> Result<Response, WorkerError> {
    let mut conn = state.db.conn().await?;
    let mut tx = conn.begin().await.map_err(AppError::from)?;
    let job: Option<Job> = sqlx::query_as(
        "SELECT id, account_id, amount_cents FROM jobs
         WHERE status = 'queued'
         ORDER BY id
         LIMIT 1
         FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(AppError::from)?;
    let Some(job) = job else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    // Charge while we hold the row lock, so no other worker can take this job meanwhile.
    state.payments.charge(&job).await?;
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(job.id)
        .execute(&mut *tx)
        .await
        .map_err(AppError::from)?;
    tx.commit().await.map_err(AppError::from)?;
    Ok(Json(job).into_response())
}

/// `GET /jobs/stats`: how many jobs are queued and being charged.
pub async fn stats(State(state): State<AppState>) -> Result<Json<QueueStats>, AppError> {
    // Stats only feed a dashboard: never let one wait for a connection.
    let mut conn = tokio::time::timeout(Duration::from_millis(5), state.db.conn())
        .await
        .map_err(|_elapsed| AppError::Db(sqlx::Error::PoolTimedOut))??;
    let (queued, running): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'queued'),
                count(*) FILTER (WHERE status = 'running')
         FROM jobs",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Json(QueueStats { queued, running }))
}

/// What can go wrong for a worker: the database, or the payments provider.
pub enum WorkerError {
    Db(AppError),
    Payments(PaymentError),
}

impl From<AppError> for WorkerError {
    fn from(e: AppError) -> Self {
        WorkerError::Db(e)
    }
}

impl From<PaymentError> for WorkerError {
    fn from(e: PaymentError) -> Self {
        WorkerError::Payments(e)
    }
}

impl IntoResponse for WorkerError {
    fn into_response(self) -> Response {
        match self {
            WorkerError::Db(e) => e.into_response(),
            WorkerError::Payments(e) => e.into_response(),
        }
    }
}
