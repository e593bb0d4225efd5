//! The JSON shapes of the payments API.

use serde::{Deserialize, Serialize};

/// What a shop posts: its own order number and the amount to charge.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewPayment {
    pub order_id: i64,
    pub amount_cents: i64,
}

/// A payment as stored and as answered.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Payment {
    pub id: i64,
    pub client_id: String,
    pub order_id: i64,
    pub amount_cents: i64,
    /// `pending`, `charged` or `failed`.
    pub status: String,
    /// The processor's reference for the charge, once charged.
    pub processor_ref: Option<i64>,
}

/// `GET /payments/{id}`: the payment and where the processor says its money is.
#[derive(Debug, Serialize)]
pub struct PaymentDetail {
    #[serde(flatten)]
    pub payment: Payment,
    /// The processor's settlement status (`approved`, ...); none before the charge.
    pub settlement: Option<String>,
}

/// `GET /payments?limit=N`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<i64>,
}
