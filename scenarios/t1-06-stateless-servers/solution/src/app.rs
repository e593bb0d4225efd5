//! Routes: which handler answers which request, and the state they share.

use crate::sessions::Sessions;
use crate::{assets, handlers};
use axum::routing::{get, post};
use axum::Router;
use sdlab_kit::Db;

/// What every handler can reach: the pool and the sessions (cloning either clones an Arc).
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub sessions: Sessions,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/login", post(handlers::login))
        .route("/me", get(handlers::me))
        .route("/cart/items", post(handlers::add_to_cart))
        .route("/static/{file}", get(assets::file))
        .with_state(state)
}
