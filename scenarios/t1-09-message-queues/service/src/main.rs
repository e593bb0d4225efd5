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
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `fulfilment.rs`
//! calls the fulfilment provider, `models.rs` holds the JSON shapes. `/healthz` and
//! `/metrics` come from `sdlab-kit`. The platform team also gave this service a Redis
//! (`REDIS_URL`) and runs this same binary as two worker processes (`SDLAB_ROLE=worker`).

mod app;
mod fulfilment;
mod handlers;
mod models;

use app::AppState;
use fulfilment::Fulfilment;
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
    sdlab_kit::serve(app::app(AppState { db, fulfilment }), &config).await
}
