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
            // SOLUTION (budget): three instances share max_connections = 30, of which 5 are
            // kept for the SQL console, the lab's monitoring and admins: 3 x 8 = 24 <= 25.
            // Little's law says 8 is plenty: 150 queries/s x ~2 ms each = 0.3 connections
            // busy on average, once no handler holds one across the payments call.
            max_connections: 8,
            min_connections: 2,
            // SOLUTION (timeout): fail fast with a 503 when the database is saturated, well
            // before the client's own 3 s timeout, yet far above a normal wait (~0 ms).
            acquire_timeout: Duration::from_millis(500),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    let payments = Payments::from_env()?;
    sdlab_kit::serve(app::app(AppState { db, payments }), &config).await
}
