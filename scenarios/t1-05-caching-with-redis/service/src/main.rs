//! The catalogue service: the shop's product pages, and the back office's price changes.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-05`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/shop REDIS_URL=redis://127.0.0.1:6379 cargo run
//! curl localhost:4000/products/1
//! curl -X PUT localhost:4000/products/1 -H 'content-type: application/json' -d '{"price_cents": 1999}'
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `models.rs` holds
//! the JSON shapes and the queries behind a product page. `deploy/redis.conf` holds the
//! settings of the Redis the platform team gave this service (`REDIS_URL`).

mod app;
mod handlers;
mod models;

use app::AppState;
use sdlab_kit::{Config, Db, DbOptions, KitError};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    // Two instances share PostgreSQL: 8 connections each is plenty for its 2 cores.
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            max_connections: 8,
            min_connections: 2,
            acquire_timeout: Duration::from_secs(1),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    sdlab_kit::serve(app::app(AppState { db }), &config).await
}
