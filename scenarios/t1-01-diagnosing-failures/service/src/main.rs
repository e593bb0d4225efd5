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
//! the JSON shapes. `/healthz` and `/metrics` come from `sdlab-kit`.

mod app;
mod handlers;
mod models;

use app::AppState;
use sdlab_kit::{Config, KitError};

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    let state = AppState {
        database_url: config.database_url.clone(),
    };
    sdlab_kit::serve(app::app(state), &config).await
}
