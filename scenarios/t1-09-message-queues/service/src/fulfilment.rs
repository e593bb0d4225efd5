//! The fulfilment provider: the warehouse's HTTP API, which takes about a quarter of a second
//! to book the picking, packing and shipping of one order. The lab runs a stand-in for it and
//! passes its URL in `FULFILMENT_URL`.
//!
//! Like most providers of its kind it honours an `Idempotency-Key` header: a second request
//! with a key it has already seen is answered again but does not ship a second parcel.

use crate::models::NewOrder;
use sdlab_kit::KitError;
use std::time::Duration;

/// A client for the fulfilment provider. Cloning is cheap (one shared connection pool inside).
#[derive(Clone)]
pub struct Fulfilment {
    http: reqwest::Client,
    url: String,
}

/// The provider failed or did not answer in time.
#[derive(Debug)]
pub struct FulfilmentError(pub String);

impl Fulfilment {
    /// Reads `FULFILMENT_URL`, e.g. `http://127.0.0.1:43121`.
    pub fn from_env() -> Result<Fulfilment, KitError> {
        let url = std::env::var("FULFILMENT_URL").map_err(|_| KitError::Config {
            var: "FULFILMENT_URL",
            expected: "the fulfilment provider's URL, e.g. http://127.0.0.1:PORT",
            found: None,
        })?;
        let http = reqwest::Client::builder()
            // An outside call always gets a deadline: a provider that hangs must not hang us.
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|_| KitError::Config {
                var: "FULFILMENT_URL",
                expected: "a URL the HTTP client accepts",
                found: Some(url.clone()),
            })?;
        Ok(Fulfilment { http, url })
    }

    /// Ships the order. Slow: about 250 ms per order, however many are asked at once.
    pub async fn ship(&self, order: &NewOrder) -> Result<(), FulfilmentError> {
        let body = format!(
            r#"{{"order_id":{},"customer_id":{},"amount_cents":{}}}"#,
            order.order_id, order.customer_id, order.amount_cents
        );
        let response = self
            .http
            .post(format!("{}/shipments", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(FulfilmentError(format!(
                "fulfilment answered {}",
                r.status()
            ))),
            Err(e) => Err(FulfilmentError(format!("fulfilment: {e}"))),
        }
    }
}
