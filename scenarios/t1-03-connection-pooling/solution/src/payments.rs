//! The payments provider: an outside HTTP service that takes about a quarter of a second per
//! charge. The lab runs a stand-in for it and passes its URL in `PAYMENTS_URL`.

use crate::models::Job;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sdlab_kit::KitError;
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

    /// Charges the job's account. Slow: about 250 ms, like a real card network round trip.
    pub async fn charge(&self, job: &Job) -> Result<(), PaymentError> {
        let body = format!(
            r#"{{"job_id":{},"account_id":{},"amount_cents":{}}}"#,
            job.id, job.account_id, job.amount_cents
        );
        let response = self
            .http
            .post(format!("{}/charge", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
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

impl IntoResponse for PaymentError {
    fn into_response(self) -> Response {
        tracing::error!(status = 502, "{}", self.0);
        (StatusCode::BAD_GATEWAY, "payments provider failed").into_response()
    }
}
