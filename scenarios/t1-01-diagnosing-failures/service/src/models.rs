//! The JSON the service reads and writes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A post as clients see it: with its author's name, so a feed renders in one request.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Post {
    pub id: i64,
    pub user_id: i64,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /posts`.
#[derive(Debug, Deserialize)]
pub struct NewPost {
    pub user_id: i64,
    pub body: String,
}
