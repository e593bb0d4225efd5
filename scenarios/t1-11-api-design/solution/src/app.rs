//! Routes: which handler answers which request, and the state they share.

use crate::processor::Processor;
use crate::{handlers, limiter};
use axum::routing::get;
use axum::Router;
use sdlab_kit::{Cache, Db};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub processor: Processor,
    /// The rate limiter's buckets.
    pub cache: Cache,
}

/// The service's routes, every one behind the rate limiter. Kept apart from `main` so a
/// test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/payments",
            get(handlers::list_payments).post(handlers::create_payment),
        )
        .route("/payments/{id}", get(handlers::get_payment))
        // SOLUTION (rate limit): every route behind the shared limiter.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limiter::limit,
        ))
        .with_state(state)
}
