//! The JSON shapes of the order service.

use serde::{Deserialize, Serialize};

/// What the checkout posts. `order_id` is the checkout's own number for the order: a POST
/// retried after a timeout carries the same number, so it is the same order.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewOrder {
    pub order_id: i64,
    pub customer_id: i64,
    pub amount_cents: i64,
}

/// What the checkout is told: the order's number and where it stands.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub order_id: i64,
    /// `accepted` (recorded, not shipped yet) or `fulfilled` (shipped).
    pub status: String,
}
