//! The JSON the service reads and writes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An account, as the login page sees it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
}

/// A product in a listing.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Product {
    pub id: i64,
    pub category: String,
    pub name: String,
    pub price_cents: i32,
}

/// One order of a user's history, or the order just placed.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub total_cents: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// One row of the back office's summary: how many orders are in a status, worth how much.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct StatusCount {
    pub status: String,
    pub orders: i64,
    pub total_cents: i64,
}

/// `GET /users/lookup?email=...`.
#[derive(Debug, Deserialize)]
pub struct EmailQuery {
    pub email: String,
}

/// `GET /products?category=...&min_cents=...&max_cents=...` (both bounds optional).
#[derive(Debug, Deserialize)]
pub struct ProductSearch {
    pub category: String,
    pub min_cents: Option<i32>,
    pub max_cents: Option<i32>,
}

/// The body of `POST /orders`.
#[derive(Debug, Deserialize)]
pub struct NewOrder {
    pub user_id: i64,
    pub product_id: i64,
    pub quantity: i32,
}
