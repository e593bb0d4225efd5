//! Routes: which handler answers which request, and the state they share.

use crate::handlers;
use crate::topic::Topic;
use axum::routing::post;
use axum::Router;
use sdlab_kit::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub topic: Topic,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/events", post(handlers::publish))
        .with_state(state)
}
