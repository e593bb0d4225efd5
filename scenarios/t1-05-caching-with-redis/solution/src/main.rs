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
//! the JSON shapes and the queries behind a product page, `page_cache.rs` keeps pages in
//! Redis. `deploy/redis.conf` holds the settings of the Redis the platform team gave this
//! service (`REDIS_URL`).

mod app;
mod handlers;
mod models;
mod page_cache;

use app::AppState;
use sdlab_kit::{Cache, CacheOptions, Config, Db, DbOptions, KitError};
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
    let redis_url = config.redis_url.clone().ok_or(KitError::Config {
        var: "REDIS_URL",
        expected: "a redis:// URL (the lab sets it)",
        found: None,
    })?;
    // One multiplexed connection per process. A cache lookup that takes longer than a
    // fraction of the page's own cost is not worth waiting for: give up and read PostgreSQL.
    let cache = Cache::connect(
        &redis_url,
        CacheOptions {
            response_timeout: Duration::from_millis(100),
            connection_timeout: Duration::from_secs(1),
        },
    )
    .await?;
    sdlab_kit::serve(app::app(AppState { db, cache }), &config).await
}
