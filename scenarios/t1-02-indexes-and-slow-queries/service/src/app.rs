//! Routes: which handler answers which request, and the state they share.

use crate::handlers;
use axum::routing::{get, post};
use axum::Router;
use sdlab_kit::Db;

/// What every handler can reach: the shared pool (cloning it clones an Arc).
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/users/lookup", get(handlers::user_by_email))
        .route("/users/{id}/orders", get(handlers::order_history))
        .route("/products", get(handlers::product_search))
        .route("/orders/summary", get(handlers::status_summary))
        .route("/orders", post(handlers::create_order))
        .with_state(state)
}
