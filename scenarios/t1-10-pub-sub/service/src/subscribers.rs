//! The three subscribing services' work, one event at a time: billing posts it to the
//! ledger, email sends the notice, analytics records it. Each is a call to the lab's stand-in
//! provider (`NOTIFY_URL`, about 50 ms an answer) and a row in `deliveries`, the record of
//! what each subscriber handled.

use crate::models::Event;
use sdlab_kit::{Db, KitError};
use std::time::Duration;

/// Every subscriber, in the order the workers are numbered (worker 1 is billing).
pub const SUBSCRIBERS: [&str; 3] = ["billing", "email", "analytics"];

/// The subscriber worker `n` (1, 2, 3) runs.
pub fn subscriber_of_worker(n: usize) -> Option<&'static str> {
    SUBSCRIBERS.get(n.checked_sub(1)?).copied()
}

/// A client for the provider. Cloning is cheap (one shared connection pool inside).
#[derive(Clone)]
pub struct Notify {
    http: reqwest::Client,
    url: String,
}

/// The provider or the database failed.
#[derive(Debug)]
pub struct DeliveryError(pub String);

impl Notify {
    /// Reads `NOTIFY_URL`, e.g. `http://127.0.0.1:43121`.
    pub fn from_env() -> Result<Notify, KitError> {
        let url = std::env::var("NOTIFY_URL").map_err(|_| KitError::Config {
            var: "NOTIFY_URL",
            expected: "the provider's URL, e.g. http://127.0.0.1:PORT",
            found: None,
        })?;
        let http = reqwest::Client::builder()
            // An outside call always gets a deadline: a provider that hangs must not hang us.
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|_| KitError::Config {
                var: "NOTIFY_URL",
                expected: "a URL the HTTP client accepts",
                found: Some(url.clone()),
            })?;
        Ok(Notify { http, url })
    }
}

/// `subscriber` handles `event`: its call to the provider, then its row in `deliveries`.
pub async fn deliver(
    db: &Db,
    notify: &Notify,
    subscriber: &str,
    event: &Event,
) -> Result<(), DeliveryError> {
    let body = format!(
        r#"{{"subscriber":"{subscriber}","event_id":{},"account_id":{}}}"#,
        event.event_id, event.account_id
    );
    let answer = notify
        .http
        .post(format!("{}/{subscriber}", notify.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| DeliveryError(format!("{subscriber}: {e}")))?;
    if !answer.status().is_success() {
        return Err(DeliveryError(format!(
            "{subscriber}: the provider answered {}",
            answer.status()
        )));
    }
    sqlx::query("INSERT INTO deliveries (subscriber, event_id, account_id) VALUES ($1, $2, $3)")
        .bind(subscriber)
        .bind(event.event_id)
        .bind(event.account_id)
        .execute(db.pool())
        .await
        .map_err(|e| DeliveryError(format!("{subscriber}: record the delivery: {e}")))?;
    Ok(())
}
