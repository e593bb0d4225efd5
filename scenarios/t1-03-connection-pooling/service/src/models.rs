//! The JSON the service reads and writes, and the row a worker takes.

use serde::{Deserialize, Serialize};

/// The body of `POST /jobs`: charge this account this amount.
#[derive(Debug, Deserialize)]
pub struct NewJob {
    pub account_id: i64,
    pub amount_cents: i64,
}

/// A job as stored in the queue.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub account_id: i64,
    pub amount_cents: i64,
}

/// What `GET /jobs/stats` answers: how many jobs wait, and how many are being charged.
#[derive(Debug, Serialize)]
pub struct QueueStats {
    pub queued: i64,
    pub running: i64,
}
