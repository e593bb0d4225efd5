//! The social feed service: users post short texts, everyone reads the latest ones.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-01`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/feed cargo run
//! curl localhost:4000/feed
//! curl localhost:4000/users/42/posts
//! curl -X POST localhost:4000/posts -H 'content-type: application/json' \
//!      -d '{"user_id": 42, "body": "hello"}'
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `models.rs` holds
//! the JSON shapes, `migrations/` holds the schema changes the code relies on. `/healthz`
//! and `/metrics` come from `sdlab-kit`.

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
    // SOLUTION (pool): one pool for the whole process, created once here and shared by
    // every request, so a request borrows an open connection (microseconds) instead of
    // opening one (a PostgreSQL backend process: milliseconds, and a slot of max_connections).
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            // PostgreSQL on 2 cores does its best work with a few active queries per core;
            // more connections would only queue inside PostgreSQL instead of here, where we
            // can see it (db_pool_waiting). 10 is also well under max_connections = 50 minus
            // 3 reserved, leaving room for the SQL console and for more instances.
            max_connections: 10,
            // Kept open so the first requests after a quiet spell do not pay for connecting.
            min_connections: 2,
            // Below the load's 2 s client timeout: when the database is saturated we answer
            // 503 "database busy" quickly rather than leave the client hanging.
            acquire_timeout: Duration::from_secs(1),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    sdlab_kit::serve(app::app(AppState { db }), &config).await
}
