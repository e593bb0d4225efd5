//! The ledger: members log in, record what they spend, and look at their spending: the
//! latest expenses and a summary by category of everything they ever recorded.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-08`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/ledger cargo run
//! curl -X POST localhost:4000/login -H 'content-type: application/json' \
//!      -d '{"user": "user42", "password": "secret-42"}'
//! curl localhost:4000/me/summary -H 'authorization: Bearer <token from the login>'
//! curl localhost:4000/me/expenses -H 'authorization: Bearer <token>'
//! curl -X POST localhost:4000/me/expenses -H 'authorization: Bearer <token>' \
//!      -H 'content-type: application/json' \
//!      -d '{"category": "groceries", "amount_cents": 1250, "note": "market"}'
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `auth.rs` logs
//! members in and tells who is asking.

mod app;
mod auth;
mod handlers;

use app::AppState;
use sdlab_kit::{Config, Db, DbOptions, KitError};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    // One instance: 20 connections is more than PostgreSQL's CPU share can keep busy, so
    // requests queue in PostgreSQL, not here.
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            max_connections: 20,
            min_connections: 4,
            acquire_timeout: Duration::from_secs(1),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    let state = AppState { db };
    sdlab_kit::serve(app::app(state), &config).await
}
