//! The shop service: customers look up their account, browse products by category and
//! price, read their order history and place orders; the back office reads a status summary.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-02`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/shop cargo run
//! curl localhost:4000/users/42/orders
//! curl 'localhost:4000/products?category=category-7&min_cents=1000&max_cents=5000'
//! curl 'localhost:4000/users/lookup?email=USER42@example.com'
//! curl localhost:4000/orders/summary
//! curl -X POST localhost:4000/orders -H 'content-type: application/json' \
//!      -d '{"user_id": 42, "product_id": 7, "quantity": 1}'
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them (one SQL query
//! each), `models.rs` holds the JSON shapes, `migrations/` holds the schema changes the code
//! relies on. `/healthz` and `/metrics` come from `sdlab-kit`.

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
    // The pool is the one scenario t1-01 ended with: created once, shared by every request,
    // 10 connections (a few active queries per core is what PostgreSQL on 2 cores does best),
    // and an acquire timeout below the clients' 2 s patience.
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
    sdlab_kit::serve(app::app(AppState { db }), &config).await
}
