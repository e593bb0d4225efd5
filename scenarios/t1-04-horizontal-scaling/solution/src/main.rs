//! The catalogue report service: `GET /reports/{category}` answers a stock report for one
//! category of products.
//!
//! Run it by hand (the lab does this for you with `sdlab start t1-04`, behind nginx):
//!
//! ```text
//! PORT=4000 DATABASE_URL=postgres://postgres@127.0.0.1:5433/catalogue cargo run
//! curl localhost:4000/reports/7
//! ```
//!
//! Layout: `app.rs` maps routes to handlers, `report.rs` builds the report. `deploy/` is
//! how the lab runs this service: `lab.toml` (how many instances) and `nginx.conf` (the load
//! balancer in front of them). `/healthz` and `/metrics` come from `sdlab-kit`.

mod app;
mod report;

use app::AppState;
use sdlab_kit::{Config, Db, DbOptions, KitError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections all instances together may hold: 50 max_connections - 3 reserved - 11 spare.
const DB_BUDGET: u32 = 36;

#[tokio::main]
async fn main() -> Result<(), KitError> {
    sdlab_kit::init_tracing();
    let config = Config::from_env()?;
    // SOLUTION (pool): the connection budget is PostgreSQL's, not this process's. Every
    // instance opens its own pool, so the pools together must fit max_connections (50)
    // minus the 3 reserved slots, with room left for the SQL console and monitoring.
    // The lab says how many instances share the database (INSTANCES); each takes its part.
    let instances: u32 = std::env::var("INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let db = Db::connect(
        &config.database_url,
        DbOptions {
            // A report holds its connection for well under a millisecond (the CPU work runs
            // after it is returned), so a few connections per instance are plenty.
            max_connections: (DB_BUDGET / instances.max(1)).max(2),
            min_connections: 2,
            acquire_timeout: Duration::from_secs(1),
            idle_timeout: Some(Duration::from_secs(60)),
        },
    )
    .await?;
    let cpus = std::env::var("CPU_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let state = AppState {
        db,
        cpu: Arc::new(Semaphore::new(cpus)),
    };
    sdlab_kit::serve(app::app(state), &config).await
}
