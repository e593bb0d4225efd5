//! The stub outside service a scenario may ask for (`[topology.dependency]`): a real HTTP
//! server on 127.0.0.1 that answers every request after a fixed latency, like a payment
//! provider that takes a quarter of a second per call.
//!
//! It runs inside the lab process (a task on the runtime that brought the scenario up), so
//! it dies with the lab whatever happens: there is no child process to leave behind.
//! Dropping the [`Dependency`] stops it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio_util::sync::CancellationToken;

use crate::catalog::DependencySpec;

/// A running stub dependency. Stops when dropped.
#[derive(Debug)]
pub struct Dependency {
    pub spec: DependencySpec,
    pub port: u16,
    calls: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Dependency {
    /// Binds a free port on 127.0.0.1 and serves until dropped. Must be called inside a
    /// Tokio runtime that outlives the scenario's services.
    pub async fn start(spec: DependencySpec) -> std::io::Result<Dependency> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let calls = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state((spec.latency, Arc::clone(&calls)));
        let shutdown = stop.clone();
        tokio::spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::warn!("stub dependency stopped: {e}");
            }
        });
        Ok(Dependency {
            spec,
            port,
            calls,
            stop,
        })
    }

    /// `http://127.0.0.1:PORT`, the value of the instances' environment variable.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests answered or in progress since the start.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Drop for Dependency {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Every path and method: wait the latency, then answer 200 with a small JSON body. The wait
/// is a timer, not work: the point is a slow partner, not a busy one.
async fn answer(State((latency, calls)): State<(Duration, Arc<AtomicU64>)>) -> impl IntoResponse {
    let n = calls.fetch_add(1, Ordering::Relaxed) + 1;
    tokio::time::sleep(latency).await;
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        format!("{{\"status\":\"approved\",\"reference\":{n}}}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_after_its_latency_and_stops_when_dropped() {
        let dep = Dependency::start(DependencySpec {
            name: "payments".into(),
            env: "PAYMENTS_URL".into(),
            latency: Duration::from_millis(150),
        })
        .await
        .unwrap();
        let (status, body) = crate::metrics::http_get(dep.port, "/charge", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("approved"), "{body}");
        assert_eq!(dep.calls(), 1);
        let port = dep.port;
        drop(dep);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(crate::metrics::http_get(port, "/", Duration::from_secs(1))
            .await
            .is_err());
    }
}
