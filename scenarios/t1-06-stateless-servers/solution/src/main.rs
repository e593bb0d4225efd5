//! The shop front: customers log in, see their account page with their basket, add to the
//! basket; every page loads the shop's JavaScript and CSS.
//!
//! Run it by hand (the lab does this for you, behind nginx, with `sdlab start t1-06`):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/shop REDIS_URL=redis://127.0.0.1:6379 cargo run
//! curl -X POST localhost:4000/login -H 'content-type: application/json' \
//!      -d '{"user": "user42", "password": "secret-42"}'
//! curl localhost:4000/me -H 'authorization: Bearer <token from the login>'
//! curl -X POST localhost:4000/cart/items -H 'authorization: Bearer <token>' \
//!      -H 'content-type: application/json' -d '{"product_id": 7}'
//! curl localhost:4000/static/app.js
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `handlers.rs` answers them, `sessions.rs` keeps
//! who is logged in (in Redis, shared by every instance), `assets.rs` serves the static
//! files. `deploy/` holds nginx's config (which caches the static files) and the instance
//! count.

mod app;
mod assets;
mod handlers;
mod sessions;

use app::AppState;
use sdlab_kit::{Cache, CacheOptions, Config, Db, DbOptions, KitError};
use sessions::Sessions;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    // Three instances share PostgreSQL's 100 connections: 10 each leaves room.
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
    let redis_url = config.redis_url.clone().ok_or(KitError::Config {
        var: "REDIS_URL",
        expected: "a redis:// URL (the lab sets it)",
        found: None,
    })?;
    // Sessions live in Redis, so any instance can serve any user, and an instance that dies
    // takes no session with it.
    let cache = Cache::connect(
        &redis_url,
        CacheOptions {
            response_timeout: Duration::from_millis(250),
            connection_timeout: Duration::from_secs(1),
        },
    )
    .await?;
    let state = AppState {
        db,
        sessions: Sessions::new(cache),
    };
    sdlab_kit::serve(app::app(state), &config).await
}
