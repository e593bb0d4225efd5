//! The rows the service reads and the JSON it reads and writes.

use serde::{Deserialize, Serialize};

/// The body of `POST /orders`.
#[derive(Debug, Deserialize)]
pub struct NewOrder {
    pub account_id: i64,
    pub amount_cents: i64,
}

/// An order as stored: `placed` (authorized) until the capture task takes the money, then
/// `captured`.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Order {
    pub id: i64,
    pub account_id: i64,
    pub amount_cents: i64,
    pub status: String,
}

/// What `GET /accounts/{id}` answers.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct AccountSummary {
    pub id: i64,
    pub name: String,
    /// Authorized, not yet captured.
    pub open_cents: i64,
    /// Taken.
    pub captured_cents: i64,
    /// All of the account's orders, placed and captured.
    pub orders: i64,
}

/// One account's orders waiting to be captured, added up.
#[derive(Debug, sqlx::FromRow)]
pub struct DueCapture {
    pub account_id: i64,
    pub amount_cents: i64,
    pub order_ids: Vec<i64>,
}
