//! The account events publisher: the core banking system posts each account event here, and
//! three services subscribe to them: billing, email and analytics.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-10`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/bank \
//!   NOTIFY_URL=http://127.0.0.1:4100 REDIS_URL=redis://127.0.0.1:6379 cargo run
//! curl -X POST localhost:4000/events -H 'content-type: application/json' \
//!      -d '{"event_id": 1, "account_id": 7, "amount_cents": 1999}'
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `topic.rs` is the
//! topic (a Redis stream, a consumer group per subscriber), `subscriber.rs` a subscriber's
//! loop, `subscribers.rs` each subscriber's work, `models.rs` holds the JSON shapes.
//! `/healthz` and `/metrics` come from `sdlab-kit`. The lab runs this same binary as three
//! worker processes (`SDLAB_ROLE=worker`, `WORKER_ID` 1 to 3), one per subscriber.

mod app;
mod handlers;
mod models;
mod subscriber;
mod subscribers;
mod topic;

use app::AppState;
use sdlab_kit::{Config, Db, DbOptions, KitError};
use std::time::Duration;
use subscribers::Notify;
use topic::Topic;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            max_connections: 10,
            min_connections: 2,
            acquire_timeout: Duration::from_secs(1),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    let notify = Notify::from_env()?;
    let redis_url = config.redis_url.clone().ok_or(KitError::Config {
        var: "REDIS_URL",
        expected: "the Redis URL holding the topic, e.g. redis://127.0.0.1:6379",
        found: None,
    })?;
    let topic = Topic::connect(&redis_url).await?;
    // SOLUTION (subscribers): one binary, two roles. Worker N is subscriber N (billing,
    // email, analytics); it serves only /healthz and /metrics and spends its life in
    // `subscriber::run`.
    if std::env::var("SDLAB_ROLE").as_deref() == Ok("worker") {
        let worker: usize = std::env::var("WORKER_ID")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let name = subscribers::subscriber_of_worker(worker).ok_or(KitError::Config {
            var: "WORKER_ID",
            expected: "1, 2 or 3: billing, email or analytics",
            found: std::env::var("WORKER_ID").ok(),
        })?;
        tokio::spawn(subscriber::run(subscriber::Subscriber {
            db,
            notify,
            topic,
            name,
        }));
        return sdlab_kit::serve(axum::Router::new(), &config).await;
    }
    sdlab_kit::serve(app::app(AppState { db, topic }), &config).await
}
