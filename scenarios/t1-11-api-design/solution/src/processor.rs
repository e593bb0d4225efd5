//! The card processor: the acquiring bank's HTTP API, which charges a card in about 20 ms and
//! reports the settlement of a charge. The lab runs a stand-in for it and passes its URL in
//! `PROCESSOR_URL`. Its API is an old one: every `POST /charges` is a new charge.
//!
//! Every call has a deadline, chosen per call: a charge is worth waiting for (giving up
//! early does not stop it; it only leaves us not knowing whether the card was charged), a
//! settlement lookup is not (the payment can be shown without it).

use crate::models::NewPayment;
use sdlab_kit::KitError;
use std::time::Duration;

/// SOLUTION (deadlines): how long a charge may take, well past the processor's slowest days.
const CHARGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a settlement lookup may take before the payment is shown without it: ten times
/// the processor's usual 20 ms.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(200);

/// A client for the card processor. Cloning is cheap (one shared connection pool inside).
#[derive(Clone)]
pub struct Processor {
    http: reqwest::Client,
    url: String,
}

/// The processor failed or could not be reached.
#[derive(Debug)]
pub struct ProcessorError(pub String);

/// What the processor answers: `{"status": "approved", "reference": 4711}`.
#[derive(Debug, serde::Deserialize)]
struct Answer {
    status: String,
    reference: i64,
}

impl Processor {
    /// Reads `PROCESSOR_URL`, e.g. `http://127.0.0.1:43121`.
    pub fn from_env() -> Result<Processor, KitError> {
        let url = std::env::var("PROCESSOR_URL").map_err(|_| KitError::Config {
            var: "PROCESSOR_URL",
            expected: "the card processor's URL, e.g. http://127.0.0.1:PORT",
            found: None,
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .build()
            .map_err(|_| KitError::Config {
                var: "PROCESSOR_URL",
                expected: "a URL the HTTP client accepts",
                found: Some(url.clone()),
            })?;
        Ok(Processor { http, url })
    }

    /// Charges the payment; the processor's reference for the charge.
    pub async fn charge(&self, payment: &NewPayment) -> Result<i64, ProcessorError> {
        let body = format!(
            r#"{{"order_id":{},"amount_cents":{}}}"#,
            payment.order_id, payment.amount_cents
        );
        let request = self
            .http
            .post(format!("{}/charges", self.url))
            .header("content-type", "application/json")
            .timeout(CHARGE_TIMEOUT)
            .body(body);
        Ok(self.send(request).await?.reference)
    }

    /// The settlement status of the charge with this reference, e.g. `approved`.
    pub async fn settlement(&self, reference: i64) -> Result<String, ProcessorError> {
        let request = self
            .http
            .get(format!("{}/settlements/{reference}", self.url))
            .timeout(LOOKUP_TIMEOUT);
        Ok(self.send(request).await?.status)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, ProcessorError> {
        let response = request
            .send()
            .await
            .map_err(|e| ProcessorError(format!("processor: {e}")))?;
        if !response.status().is_success() {
            return Err(ProcessorError(format!(
                "processor answered {}",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| ProcessorError(format!("processor: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| ProcessorError(format!("processor's answer: {e}")))
    }
}
