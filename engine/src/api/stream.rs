//! The live metrics stream: server-sent events, one `sample` event a second while the
//! scenario runs here, each a `SampleView` as JSON. EventSource cannot send headers, so this
//! is the endpoint that takes the token as `?token=`.
//!
//! Each stream runs its own collector and ends when the client goes away or the server shuts
//! down (after a stop the samples show the services down).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::model::SampleView;
use super::{ApiError, ApiState};
use crate::metrics;

pub(super) async fn metrics(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?;
    let targets = state.runner.targets(&scenario.id).await.ok_or_else(|| {
        ApiError::Conflict(format!(
            "{} is not running here; start it first",
            scenario.id
        ))
    })?;
    let (tx, rx) = mpsc::unbounded_channel();
    // The collector stops with the server, or once the stream (and so `rx`) is dropped.
    let cancel: CancellationToken = state.shutdown.child_token();
    let collector_cancel = cancel.clone();
    tokio::spawn(metrics::collect(targets, tx, collector_cancel));
    let guard = cancel.drop_guard();
    let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let sample = rx.recv().await?;
        let event = Event::default()
            .event("sample")
            .json_data(SampleView::from(&sample))
            .unwrap_or_else(|_| {
                Event::default()
                    .event("error")
                    .data("cannot encode the sample")
            });
        Some((Ok(event), (rx, guard)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
