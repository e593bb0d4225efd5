//! Routes: which handler answers which request, and the state they share.

use crate::{auth, handlers};
use axum::routing::{get, post};
use axum::Router;
use sdlab_kit::Db;

/// What every handler can reach: the pool (cloning it clones an Arc).
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/login", post(auth::login))
        .route("/me/summary", get(handlers::summary))
        .route(
            "/me/expenses",
            get(handlers::recent).post(handlers::add_expense),
        )
        .with_state(state)
}
