//! The payments provider: an outside HTTP service that takes a few tens of milliseconds per
//! call. `authorize` reserves an order's money when it is placed; `capture` takes what an
//! account's authorized orders add up to. The lab runs a stand-in for it and passes its URL
//! in `PAYMENTS_URL`.

use crate::models::DueCapture;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sdlab_kit::KitError;
use std::fmt;
use std::time::Duration;

/// A client for the payments provider. Cloning is cheap (one shared connection pool inside).
#[derive(Clone)]
pub struct Payments {
    http: reqwest::Client,
    url: String,
}

impl Payments {
    /// Reads `PAYMENTS_URL`, e.g. `http://127.0.0.1:43121`.
    pub fn from_env() -> Result<Payments, KitError> {
        let url = std::env::var("PAYMENTS_URL").map_err(|_| KitError::Config {
            var: "PAYMENTS_URL",
            expected: "the payments provider's URL, e.g. http://127.0.0.1:PORT",
            found: None,
        })?;
        let http = reqwest::Client::builder()
            // An outside call always gets a deadline: a provider that hangs must not hang us.
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|_| KitError::Config {
                var: "PAYMENTS_URL",
                expected: "a URL the HTTP client accepts",
                found: Some(url.clone()),
            })?;
        Ok(Payments { http, url })
    }

    /// Reserves `amount_cents` on the account for a new order.
    ///
    /// SOLUTION (propagation): the request's ID goes along in `X-Request-Id`, so the
    /// provider's logs (and support, when a customer calls) can find the call that belongs to
    /// one of our requests.
    pub async fn authorize(
        &self,
        request_id: &str,
        account_id: i64,
        amount_cents: i64,
    ) -> Result<(), PaymentError> {
        let body = format!(r#"{{"account_id":{account_id},"amount_cents":{amount_cents}}}"#);
        self.post("/authorize", body, Some(request_id)).await
    }

    /// Takes the money of one account's authorized orders. The key lets the provider ignore
    /// a capture it has already done, should the same one be sent twice.
    pub async fn capture(&self, due: &DueCapture) -> Result<(), PaymentError> {
        let last = due.order_ids.iter().max().copied().unwrap_or_default();
        let body = format!(
            r#"{{"account_id":{},"amount_cents":{},"orders":{},"capture_key":"{}-{last}"}}"#,
            due.account_id,
            due.amount_cents,
            due.order_ids.len(),
            due.account_id
        );
        self.post("/capture", body, None).await
    }

    async fn post(
        &self,
        path: &str,
        body: String,
        request_id: Option<&str>,
    ) -> Result<(), PaymentError> {
        let mut call = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(id) = request_id {
            call = call.header(crate::request_id::HEADER, id);
        }
        let response = call.send().await;
        match response {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(PaymentError(format!("payments answered {}", r.status()))),
            Err(e) => Err(PaymentError(format!("payments: {e}"))),
        }
    }
}

/// The provider failed or timed out: 502 for the client, the cause in our log.
#[derive(Debug)]
pub struct PaymentError(String);

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl IntoResponse for PaymentError {
    fn into_response(self) -> Response {
        tracing::error!(status = 502, "{}", self.0);
        (StatusCode::BAD_GATEWAY, "payments provider failed").into_response()
    }
}
