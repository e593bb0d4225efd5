//! SOLUTION (request id): every request gets an ID, taken from its `X-Request-Id` header when
//! the caller sent one (a gateway or a client that wants to find its request in our logs),
//! made up here otherwise. The ID is recorded on a `request` span, so every log line written
//! while serving the request carries it (the JSON logs show the span's fields), it is sent
//! back in the response's `X-Request-Id`, and handlers can reach it (`Extension<RequestId>`)
//! to pass it on to the services they call.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

/// The header the ID travels in, in and out.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The ID of the request being served.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Middleware (`axum::middleware::from_fn`): takes or makes the ID, serves the request inside
/// its span, logs one line when it is answered (status and time taken), and echoes the ID.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|value| value.to_str().ok())
        // An ID from outside is someone else's text: accept only a short, plain one.
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(new_id);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "answered"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// A new ID, unique across restarts: this process's start time and a counter.
fn new_id() -> String {
    static STARTED: OnceLock<u128> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let started = STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_micros())
            .unwrap_or_default()
    });
    format!("{started:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
