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
    // SOLUTION (release): claim the job in one short statement that marks it 'running', so
    // other workers skip it without us holding a lock or a transaction open...
    let job: Option<Job> = {
        let mut conn = state.db.conn().await?;
        sqlx::query_as(
            "UPDATE jobs SET status = 'running', claimed_at = now()
             WHERE id = (SELECT id FROM jobs
                         WHERE status = 'queued'
                         ORDER BY id
                         LIMIT 1
                         FOR UPDATE SKIP LOCKED)
             RETURNING id, account_id, amount_cents",
        )
        .fetch_optional(&mut *conn)
        .await
        .map_err(AppError::from)?
        // ...and `conn` is dropped here: the connection goes back to the pool for the
        // quarter of a second we spend waiting on the payments provider.
    };
    let Some(job) = job else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if let Err(e) = state.payments.charge(&job).await {
        // Put the job back for another try rather than lose it.
        let mut conn = state.db.conn().await?;
        sqlx::query("UPDATE jobs SET status = 'queued', claimed_at = NULL WHERE id = $1")
            .bind(job.id)
            .execute(&mut *conn)
            .await
            .map_err(AppError::from)?;
        return Err(e.into());
    }
    // SOLUTION (release): a second short borrow to remove the job once it is paid.
    let mut conn = state.db.conn().await?;
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(job.id)
        .execute(&mut *conn)
        .await
        .map_err(AppError::from)?;
    Ok(Json(job).into_response())
}

/// `GET /jobs/stats`: how many jobs are queued and being charged.
pub async fn stats(State(state): State<AppState>) -> Result<Json<QueueStats>, AppError> {
    // SOLUTION (timeout): the pool's own acquire timeout (main.rs) applies here too. The
    // 5 ms one this handler had failed stats that a few milliseconds' wait would have served.
    let mut conn = state.db.conn().await?;
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
