//! Routes: which handler answers which request, and the state they share.

use crate::handlers;
use crate::payments::Payments;
use axum::routing::{get, post};
use axum::Router;
use sdlab_kit::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub payments: Payments,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/jobs", post(handlers::enqueue))
        .route("/jobs/next", post(handlers::process_next))
        .route("/jobs/stats", get(handlers::stats))
        .with_state(state)
}
