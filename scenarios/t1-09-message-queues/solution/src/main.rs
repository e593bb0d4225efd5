//! The order service: the shop's checkout posts each order here; the service records it and
//! has the fulfilment provider (the warehouse's API) pick, pack and ship it.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-09`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/shop \
//!   FULFILMENT_URL=http://127.0.0.1:4100 REDIS_URL=redis://127.0.0.1:6379 cargo run
//! curl -X POST localhost:4000/orders -H 'content-type: application/json' \
//!      -d '{"order_id": 1, "customer_id": 42, "amount_cents": 1999}'
//! SDLAB_ROLE=worker PORT=4001 ... cargo run     # a worker: ships what the web side queued
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `queue.rs` is the
//! order queue (a Redis stream with a consumer group), `worker.rs` the workers' loop,
//! `fulfilment.rs` calls the fulfilment provider, `models.rs` holds the JSON shapes.
//! `/healthz` and `/metrics` come from `sdlab-kit`.

mod app;
mod fulfilment;
mod handlers;
mod models;
mod queue;
mod worker;

use app::AppState;
use fulfilment::Fulfilment;
use queue::OrderQueue;
use sdlab_kit::{Config, Db, DbOptions, KitError};
use std::time::Duration;

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
    let fulfilment = Fulfilment::from_env()?;
    let redis_url = config.redis_url.clone().ok_or(KitError::Config {
        var: "REDIS_URL",
        expected: "the Redis URL holding the order queue, e.g. redis://127.0.0.1:6379",
        found: None,
    })?;
    let queue = OrderQueue::connect(&redis_url).await?;
    // SOLUTION (workers): one binary, two roles. The lab starts the web instances with
    // SDLAB_ROLE=web and the workers with SDLAB_ROLE=worker; a worker serves only /healthz
    // and /metrics, and spends its life in `worker::run`, so the slow shipping never holds a
    // checkout request.
    if std::env::var("SDLAB_ROLE").as_deref() == Ok("worker") {
        let consumer = format!(
            "worker-{}",
            config.instance_id.trim_start_matches("worker-")
        );
        let reader = OrderQueue::connect_reader(&redis_url).await?;
        tokio::spawn(worker::run(worker::Worker {
            db,
            fulfilment,
            queue,
            reader,
            consumer,
        }));
        return sdlab_kit::serve(axum::Router::new(), &config).await;
    }
    sdlab_kit::serve(app::app(AppState { db, queue }), &config).await
}
