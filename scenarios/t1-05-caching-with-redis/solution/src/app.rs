//! Routes: which handler answers which request, and the state they share.

use crate::handlers;
use axum::routing::get;
use axum::Router;
use sdlab_kit::{Cache, Db};

/// What every handler can reach: the shared pool and the Redis connection (cloning either
/// clones an Arc).
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub cache: Cache,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/products/{id}",
            get(handlers::product_page).put(handlers::update_price),
        )
        .with_state(state)
}
