//! The payments API: partner shops post their customers' payments here; the service records
//! each one and has the card processor charge it. Shops also list their payments and look one
//! up, with its settlement as the processor reports it.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-11`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/payments \
//!   PROCESSOR_URL=http://127.0.0.1:4100 REDIS_URL=redis://127.0.0.1:6379 cargo run
//! curl -X POST localhost:4000/payments -H 'content-type: application/json' \
//!      -H 'X-Client-Id: shop-1' -H 'Idempotency-Key: pay-1' \
//!      -d '{"order_id": 1, "amount_cents": 199}'
//! curl localhost:4000/payments -H 'X-Client-Id: shop-1'
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `client.rs` tells
//! which shop is asking, `limiter.rs` holds each shop to its rate (a token bucket in Redis,
//! shared by the instances), `processor.rs` calls the card processor (with deadlines),
//! `models.rs` holds the JSON shapes. `/healthz` and `/metrics` come from `sdlab-kit`. Two
//! instances of this service run side by side.

mod app;
mod client;
mod handlers;
mod limiter;
mod models;
mod processor;

use app::AppState;
use processor::Processor;
use sdlab_kit::{Cache, CacheOptions, Config, Db, DbOptions, KitError};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    // Five connections per instance: the database's budget for this API, shared by two.
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            max_connections: 5,
            min_connections: 2,
            acquire_timeout: Duration::from_secs(1),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    let processor = Processor::from_env()?;
    let redis_url = config.redis_url.clone().ok_or(KitError::Config {
        var: "REDIS_URL",
        expected: "the Redis that keeps the rate limiter's buckets, e.g. redis://127.0.0.1:6379",
        found: None,
    })?;
    // The limiter asks Redis on every request: it must answer fast or be skipped.
    let cache = Cache::connect(
        &redis_url,
        CacheOptions {
            response_timeout: Duration::from_millis(100),
            connection_timeout: Duration::from_secs(1),
        },
    )
    .await?;
    let state = AppState {
        db,
        processor,
        cache,
    };
    sdlab_kit::serve(app::app(state), &config).await
}
