//! The live metrics stream: server-sent events, one `sample` event a second while the
//! scenario runs here, each a `SampleView` as JSON. EventSource cannot send headers, so this
//! is the endpoint that takes the token as `?token=`.
//!
//! Every stream reads the samples of the one collector the runner keeps for the running lab
//! (which also feeds the lab's Prometheus exporter), so a second window costs no second probe
//! session on PostgreSQL; a stream ends when the client goes away, the lab stops, or the
//! server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;

use super::model::SampleView;
use super::{ApiError, ApiState};

pub(super) async fn metrics(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let mut samples = state.runner.samples(&scenario.id).await.ok_or_else(|| {
        ApiError::Conflict(format!(
            "{} is not running here; start it first",
            scenario.id
        ))
    })?;
    // The newest second at once (when there is one), then each new one.
    samples.mark_changed();
    let shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold(samples, move |mut samples| {
        let shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    changed = samples.changed() => changed.ok()?,
                }
                let Some(sample) = samples.borrow_and_update().clone() else {
                    continue;
                };
                let event = Event::default()
                    .event("sample")
                    .json_data(SampleView::from(&sample))
                    .unwrap_or_else(|_| {
                        Event::default()
                            .event("error")
                            .data("cannot encode the sample")
                    });
                return Some((Ok(event), samples));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
