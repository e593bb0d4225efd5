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
        .route("/orders", post(handlers::place_order))
        .route("/accounts/{account_id}", get(handlers::account))
        .route(
            "/accounts/{account_id}/orders",
            get(handlers::recent_orders),
        )
        // SOLUTION (request id): added with `layer`, so it runs after routing and sees the
        // route pattern for its span.
        .layer(axum::middleware::from_fn(crate::request_id::request_id))
        .with_state(state)
}
