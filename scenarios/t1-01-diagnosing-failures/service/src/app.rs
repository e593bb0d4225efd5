//! Routes: which handler answers which request, and the state they share.

use crate::handlers;
use axum::routing::{get, post};
use axum::Router;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub database_url: String,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/feed", get(handlers::feed))
        .route("/users/{id}/posts", get(handlers::user_posts))
        .route("/posts", post(handlers::create_post))
        .with_state(state)
}
