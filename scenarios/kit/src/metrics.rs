//! Prometheus metrics: the process-wide recorder, the HTTP middleware that feeds it, and
//! the `/metrics` body.
//!
//! HTTP metrics (only for the service's own routes; `/metrics` and `/healthz` are left out
//! so scrapes and probes do not blur the picture):
//! - `http_requests_total{route,status}`: counter; status 499 counts requests whose client
//!   gave up before the answer.
//! - `http_request_duration_seconds{route}`: histogram ([`HttpMetrics::PerRoute`], the
//!   default), or one histogram for the whole service without the label
//!   ([`HttpMetrics::Unlabelled`], chosen with [`crate::serve_with`]).
//! - `http_requests_in_flight`: gauge.
//! - `service_info{instance}`: always 1; tells instances apart.
//!
//! `route` is the route *pattern* (`/users/{id}/posts`), never the raw path, so the number
//! of series stays bounded however many ids the load uses; unmatched paths share
//! `route="unmatched"`. Pool metrics are in [`crate::db`].

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "http_requests_in_flight";
pub const SERVICE_INFO: &str = "service_info";

/// Bucket bounds for every `*_seconds` histogram: fine below 10 ms where a healthy query
/// lives, coarse up to 10 s where a broken one does, so p95/p99 can be read in both.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus handle, installing the recorder on first use. `metrics`
/// macros record nothing until a recorder is installed, so every kit entry point that
/// records (router, pool) calls this first. `None` only if another recorder was installed
/// by someone else, in which case `/metrics` says so instead of panicking.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS);
            let handle = match builder {
                Ok(builder) => builder.install_recorder(),
                Err(err) => Err(err),
            };
            match handle {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(err) => {
                    tracing::error!(
                        "metrics disabled: could not install the Prometheus recorder: {err}"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Help lines, so a learner reading raw `/metrics` knows what each series means.
fn describe() {
    metrics::describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by route pattern and status code."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time from request received to response headers ready, by route pattern."
    );
    metrics::describe_gauge!(
        HTTP_REQUESTS_IN_FLIGHT,
        "HTTP requests being handled right now."
    );
    metrics::describe_gauge!(
        SERVICE_INFO,
        "Always 1; the instance label tells instances apart."
    );
    crate::db::describe();
}

/// Sets `service_info{instance}` to 1.
pub fn set_service_info(instance: &str) {
    if handle().is_some() {
        metrics::gauge!(SERVICE_INFO, "instance" => instance.to_owned()).set(1.0);
    }
}

/// How the latency histogram is labelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpMetrics {
    /// `http_request_duration_seconds{route}`: one histogram per route pattern.
    #[default]
    PerRoute,
    /// One `http_request_duration_seconds` for every route together, as a service that keeps
    /// its metrics small might export: the total is right, which route is slow is lost.
    /// `http_requests_total` keeps its `route` label either way.
    Unlabelled,
}

/// Middleware (for `axum::middleware::from_fn_with_state`, with the [`HttpMetrics`] to
/// record) recording the HTTP metrics. It must be added with `Router::layer` so it runs after
/// routing and sees [`MatchedPath`].
pub async fn track_http(
    State(labels): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let mut tracked = Tracked::start(route, labels);
    let response = next.run(request).await;
    tracked.status = Some(response.status().as_u16());
    response
}

/// Status recorded for a request whose client went away before the answer (nginx's
/// convention). The handler's future is dropped then, so without this guard the request
/// would vanish from the metrics, and those are exactly the slow ones.
pub const STATUS_CLIENT_CLOSED: u16 = 499;

/// One request in flight. Recording happens on drop, so a request the client abandoned
/// (its future dropped mid-handler) still leaves the in-flight gauge and is counted.
struct Tracked {
    route: String,
    labels: HttpMetrics,
    started: Instant,
    status: Option<u16>,
}

impl Tracked {
    fn start(route: String, labels: HttpMetrics) -> Tracked {
        metrics::gauge!(HTTP_REQUESTS_IN_FLIGHT).increment(1.0);
        Tracked {
            route,
            labels,
            started: Instant::now(),
            status: None,
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_REQUESTS_IN_FLIGHT).decrement(1.0);
        let route = std::mem::take(&mut self.route);
        let status = self.status.unwrap_or(STATUS_CLIENT_CLOSED).to_string();
        let seconds = self.started.elapsed().as_secs_f64();
        match self.labels {
            HttpMetrics::PerRoute => {
                metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => route.clone())
                    .record(seconds)
            }
            HttpMetrics::Unlabelled => {
                metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS).record(seconds)
            }
        }
        metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => route, "status" => status).increment(1);
    }
}

/// Handler for `GET /metrics`: samples the pool gauges, then renders. Rendering is a walk
/// over a few dozen series, cheap enough for the lab to scrape every second.
pub async fn render() -> Response {
    let Some(handle) = handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        )
            .into_response();
    };
    crate::db::sample_pools();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Histograms keep raw samples until a render drains them; if nobody scrapes, this keeps
/// memory bounded. [`crate::serve`] runs it every few seconds.
pub fn run_upkeep() {
    if let Some(handle) = handle() {
        handle.run_upkeep();
    }
}
