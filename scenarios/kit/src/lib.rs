//! sdlab-kit: the plumbing every scenario service shares, so that a service's own files
//! hold only the lesson.
//!
//! A service's `main` is typically four lines:
//!
//! ```no_run
//! use sdlab_kit::{Config, Db, DbOptions, KitError};
//! use std::time::Duration;
//!
//! # fn app(_db: Db) -> axum::Router { axum::Router::new() }
//! #[tokio::main]
//! async fn main() -> Result<(), KitError> {
//!     sdlab_kit::init_tracing();
//!     let config = Config::from_env()?;
//!     let options = DbOptions {
//!         max_connections: 8,
//!         min_connections: 2,
//!         acquire_timeout: Duration::from_secs(2),
//!         idle_timeout: Some(Duration::from_secs(60)),
//!     };
//!     let db = Db::connect(&config.database_url, options).await?;
//!     sdlab_kit::serve(app(db), &config).await
//! }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`Config`], read from the environment the lab sets (PORT, DATABASE_URL, ...).
//! - [`telemetry`]: [`init_tracing`], log lines on stderr tagged with the instance id, or
//!   [`init_tracing_json`], one JSON object per line carrying the fields of the spans open.
//! - [`metrics`]: the Prometheus recorder, the HTTP middleware and the `/metrics` body.
//! - [`db`]: [`Db`], a `PgPool` that measures how long handlers wait for a connection.
//! - `cache` (feature `redis`): `Cache`, a Redis client (one multiplexed connection that
//!   reconnects by itself) counting hits, misses, command times and errors (`oom` when
//!   Redis refuses a write at maxmemory); its `CacheError` answers 503 "cache unavailable".
//!   Enable it with `sdlab-kit = { path = "../../kit", features = ["redis"] }`; the
//!   `redis` crate is re-exported as `sdlab_kit::redis` for `Cache::query`.
//! - [`error`]: [`AppError`] for handlers (logs the cause, answers 500/503) and
//!   [`KitError`] for startup.
//! - [`server`]: [`serve`], which adds `/healthz` and `/metrics`, binds and shuts down
//!   gracefully; [`serve_with`] chooses how the latency histogram is labelled
//!   ([`HttpMetrics`]).

#[cfg(feature = "redis")]
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod metrics;
pub mod server;
pub mod telemetry;

#[cfg(feature = "redis")]
pub use cache::{Cache, CacheError, CacheOptions};
pub use config::Config;
pub use db::{Db, DbOptions};
pub use error::{AppError, KitError};
pub use metrics::HttpMetrics;
pub use server::{router, router_with, serve, serve_on, serve_with, ServeOptions};
pub use telemetry::{init_tracing, init_tracing_json};

/// The Redis client crate, for commands [`Cache`] has no method for:
/// `cache.query::<i64>(sdlab_kit::redis::cmd("INCR").arg(key))`.
#[cfg(feature = "redis")]
pub use redis;
