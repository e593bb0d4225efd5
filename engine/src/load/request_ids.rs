//! Request IDs the load generator sends (`[check.request_ids]`): every request of a run gets
//! a unique value in one header (`sdlab-<run>-<n>`), and the answer is expected to carry the
//! same value back in the same header. [`RequestIds`] hands the values out and keeps, per
//! request, when it was in flight and what came back, for the check to compare with the
//! service's logs and the stub dependency's calls.
//!
//! A run without it ([`super::run`]) never touches any of this: the cost of a request is
//! unchanged (one `None` checked).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hyper::http::{HeaderName, HeaderValue};

use super::record::Outcome;

/// The IDs of one run, shared by every request (cheap to clone).
#[derive(Clone)]
pub struct RequestIds {
    inner: Arc<Inner>,
}

struct Inner {
    header: HeaderName,
    prefix: String,
    next: AtomicU64,
    sent: Mutex<Vec<Tagged>>,
}

/// What one request with an ID did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub id: String,
    pub sent_at: Instant,
    /// When the answer was read in full; None when the request got no answer (a timeout or
    /// a broken connection: the service may still be working on it).
    pub answered_at: Option<Instant>,
    /// What came back in the header (only meaningful with an answer).
    pub echo: Echo,
}

/// The response's value of the ID header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Echo {
    Same,
    Missing,
    /// Another value (shown as text, lossily).
    Other(String),
    /// No answer, so nothing to compare.
    NoAnswer,
}

/// One request's ID as the sender carries it: the value, and where to report what came back.
/// Two tags are equal when their values are (a value is never handed out twice).
#[derive(Clone)]
pub(crate) struct IdTag {
    pub value: HeaderValue,
    ids: RequestIds,
}

impl PartialEq for IdTag {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for IdTag {}

impl std::fmt::Debug for IdTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IdTag").field(&self.value).finish()
    }
}

impl std::fmt::Debug for RequestIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestIds")
            .field("header", &self.inner.header)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl RequestIds {
    /// IDs `<prefix>-1`, `<prefix>-2`, ... in `header`. Err: the header name or the prefix
    /// cannot be sent in HTTP.
    pub fn new(header: &str, prefix: &str) -> Result<RequestIds, String> {
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("{header:?} is not an HTTP header name"))?;
        HeaderValue::from_str(prefix)
            .map_err(|_| format!("{prefix:?} cannot be sent in a header"))?;
        Ok(RequestIds {
            inner: Arc::new(Inner {
                header,
                prefix: prefix.to_owned(),
                next: AtomicU64::new(1),
                sent: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A fresh prefix for one run: `sdlab-<8 hex digits>`, unlike any earlier run's, so the
    /// lines of earlier runs in a log never match this one's IDs.
    pub fn run_prefix() -> String {
        format!("sdlab-{:08x}", rand::random::<u32>())
    }

    pub fn header(&self) -> &HeaderName {
        &self.inner.header
    }

    /// The prefix every ID of this run starts with (`sdlab-1a2b3c4d`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    pub(crate) fn next_tag(&self) -> IdTag {
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let text = format!("{}-{n}", self.inner.prefix);
        // The prefix was checked in `new` and the rest is digits.
        let value = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("-"));
        IdTag {
            value,
            ids: self.clone(),
        }
    }

    /// Every request sent with an ID so far, in the order they finished.
    pub fn sent(&self) -> Vec<Tagged> {
        self.inner
            .sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl IdTag {
    pub fn header(&self) -> &HeaderName {
        &self.ids.inner.header
    }

    /// Records the request's outcome and the header the answer carried.
    pub fn record(&self, sent_at: Instant, done_at: Instant, outcome: &Outcome, echoed: Echo) {
        let answered = matches!(outcome, Outcome::Status(_));
        let tagged = Tagged {
            id: self.value.to_str().unwrap_or_default().to_owned(),
            sent_at,
            answered_at: answered.then_some(done_at),
            echo: if answered { echoed } else { Echo::NoAnswer },
        };
        self.ids
            .inner
            .sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tagged);
    }

    /// How the answer's value of the header (its first, if any) compares with the value sent.
    pub fn echo(&self, answered: Option<&[u8]>) -> Echo {
        match answered {
            None => Echo::Missing,
            Some(v) if v == self.value.as_bytes() => Echo::Same,
            Some(v) => Echo::Other(String::from_utf8_lossy(v).into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbered_under_the_runs_prefix() {
        let ids = RequestIds::new("X-Request-Id", "sdlab-run").unwrap();
        let a = ids.next_tag();
        let b = ids.next_tag();
        assert_eq!(a.value, "sdlab-run-1");
        assert_eq!(b.value, "sdlab-run-2");
        assert_eq!(a.header().as_str(), "x-request-id");
        assert_eq!(a.echo(None), Echo::Missing);
        assert_eq!(a.echo(Some(b"sdlab-run-1")), Echo::Same);
        assert_eq!(
            b.echo(Some(b"sdlab-run-1")),
            Echo::Other("sdlab-run-1".into())
        );
    }

    #[test]
    fn a_header_name_with_a_space_is_refused() {
        assert!(RequestIds::new("X Request", "p").is_err());
        assert!(RequestIds::new("X-Request-Id", "bad\nvalue").is_err());
        assert_ne!(RequestIds::run_prefix(), RequestIds::run_prefix());
    }

    /// An axum app on a free loopback port: `/echo` answers with the request's ID header,
    /// `/forget` without it, `/other` with another value.
    async fn echo_server() -> String {
        use axum::http::HeaderMap as Headers;
        use axum::routing::get;
        let app = axum::Router::new()
            .route(
                "/echo",
                get(|headers: Headers| async move {
                    let id = headers.get("x-request-id").cloned();
                    let mut answer = Headers::new();
                    if let Some(id) = id {
                        answer.insert("x-request-id", id);
                    }
                    (answer, "ok")
                }),
            )
            .route("/forget", get(|| async { "ok" }))
            .route(
                "/other",
                get(|| async { ([("x-request-id", "made-up")], "ok") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn plan(url: &str, model: crate::load::Model) -> crate::load::LoadPlan {
        use crate::load::{RequestTemplate, Stage};
        let mut mix = vec![
            RequestTemplate::get("echo", "/echo"),
            RequestTemplate::get("forget", "/forget"),
            RequestTemplate::get("other", "/other"),
        ];
        mix[0].weight = 8;
        crate::load::LoadPlan {
            targets: vec![url.to_owned()],
            stages: vec![Stage::constant(std::time::Duration::from_secs(1), 200.0)],
            mix,
            timeout: std::time::Duration::from_secs(5),
            max_in_flight: 1000,
            seed: 7,
            model,
            sessions: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_of_a_run_sends_its_id_and_the_answer_is_compared() {
        let url = echo_server().await;
        for model in [
            crate::load::Model::Open,
            crate::load::Model::Closed { users: 4 },
        ] {
            let ids = RequestIds::new("X-Request-Id", "sdlab-test").unwrap();
            let summary = crate::load::run_with_request_ids(
                plan(&url, model),
                ids.clone(),
                None,
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .unwrap();
            let sent = ids.sent();
            assert_eq!(
                sent.len() as u64,
                summary.sent,
                "{model:?}: every request has an ID"
            );
            let mut unique: Vec<&str> = sent.iter().map(|t| t.id.as_str()).collect();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), sent.len(), "{model:?}: no ID twice");
            let count =
                |want: &dyn Fn(&Echo) -> bool| sent.iter().filter(|t| want(&t.echo)).count();
            let same = count(&|e| *e == Echo::Same);
            let missing = count(&|e| *e == Echo::Missing);
            let other = count(&|e| *e == Echo::Other("made-up".into()));
            assert_eq!(
                same + missing + other,
                sent.len(),
                "{model:?}: all answered"
            );
            let per = |name: &str| {
                let (_, t) = summary
                    .per_template
                    .iter()
                    .find(|(n, _)| n == name)
                    .unwrap();
                t.sent as usize
            };
            assert_eq!(same, per("echo"), "{model:?}");
            assert_eq!(missing, per("forget"), "{model:?}");
            assert_eq!(other, per("other"), "{model:?}");
            assert!(
                same > 0 && missing > 0 && other > 0,
                "{model:?}: {same} {missing} {other}"
            );
            assert!(sent
                .iter()
                .all(|t| t.id.starts_with("sdlab-test-") && t.answered_at >= Some(t.sent_at)));
        }
    }
}
