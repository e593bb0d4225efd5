//! Routes: which handler answers which request, and the state they share.

use crate::handlers;
use crate::processor::Processor;
use axum::routing::get;
use axum::Router;
use sdlab_kit::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub processor: Processor,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/payments",
            get(handlers::list_payments).post(handlers::create_payment),
        )
        .route("/payments/{id}", get(handlers::get_payment))
        .with_state(state)
}
