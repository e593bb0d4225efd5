//! The payment job queue: clients enqueue charges, workers take them one at a time, charge
//! them through the payments provider and remove them. Three instances of this service run
//! side by side against one PostgreSQL.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-03`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/jobs \
//!   PAYMENTS_URL=http://127.0.0.1:4100 cargo run
//! curl -X POST localhost:4000/jobs -H 'content-type: application/json' \
//!      -d '{"account_id": 42, "amount_cents": 1999}'
//! curl -X POST localhost:4000/jobs/next
//! curl localhost:4000/jobs/stats
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `payments.rs` calls
//! the payments provider, `models.rs` holds the JSON shapes. `/healthz` and `/metrics` come
//! from `sdlab-kit`.

mod app;
mod handlers;
mod models;
mod payments;

use app::AppState;
use payments::Payments;
use sdlab_kit::{Config, Db, DbOptions, KitError};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            // Plenty of connections, so a request never has to wait for one.
            max_connections: 20,
            min_connections: 2,
            // Never give up on a request: waiting for a connection beats failing.
            acquire_timeout: Duration::from_secs(3600),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    let payments = Payments::from_env()?;
    sdlab_kit::serve(app::app(AppState { db, payments }), &config).await
}
