//! The JSON shapes of the events publisher.

use serde::{Deserialize, Serialize};

/// What the core banking system posts: an account event. `event_id` is its own number for
/// the event (a POST retried after a timeout carries the same number, so it is the same
/// event); `account_id` is the key: one account's events must be handled in their order.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Event {
    pub event_id: i64,
    pub account_id: i64,
    pub amount_cents: i64,
}

/// What the poster is told.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub event_id: i64,
    /// `published` once every subscriber will get it (or, here, already has).
    pub status: String,
}
