//! The shop's orders service: customers place orders (each authorized with the payments
//! provider on the spot), look at their account and their recent orders; a task in the same
//! process captures the authorized money every few seconds.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-07`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/orders \
//!   PAYMENTS_URL=http://127.0.0.1:4100 cargo run
//! curl -X POST localhost:4000/orders -H 'content-type: application/json' \
//!      -d '{"account_id": 42, "amount_cents": 1999}'
//! curl localhost:4000/accounts/42
//! curl localhost:4000/accounts/42/orders
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `capture.rs` is the
//! capture task, `payments.rs` calls the payments provider, `models.rs` holds the rows and
//! JSON shapes. `/healthz` and `/metrics` come from `sdlab-kit`.

mod app;
mod capture;
mod handlers;
mod models;
mod payments;

use app::AppState;
use payments::Payments;
use sdlab_kit::{Config, Db, DbOptions, HttpMetrics, KitError, ServeOptions};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            max_connections: 30,
            min_connections: 2,
            // Well under the clients' 2 s patience: a busy database answers 503 quickly.
            acquire_timeout: Duration::from_secs(1),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    let payments = Payments::from_env()?;
    tokio::spawn(capture::run(db.clone(), payments.clone()));
    // One latency histogram for the whole service: the dashboard shows one p99 line, and
    // /metrics stays small.
    let options = ServeOptions {
        http_metrics: HttpMetrics::Unlabelled,
    };
    sdlab_kit::serve_with(app::app(AppState { db, payments }), &config, options).await
}
