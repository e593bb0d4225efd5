//! Routes: which handler answers which request, and the state they share.

use crate::report;
use axum::routing::get;
use axum::Router;
use sdlab_kit::Db;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Reports computed at once. The lab sets CPU_THREADS only where it cannot give an
    /// instance a CPU quota; otherwise this is the number of CPUs the process sees.
    pub cpu: Arc<Semaphore>,
}

/// The service's routes. Kept apart from `main` so a test can call the router directly.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/reports/{category}", get(report::category_report))
        .with_state(state)
}
