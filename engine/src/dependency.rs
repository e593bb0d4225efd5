//! The stub outside service a scenario may ask for (`[topology.dependency]`): a real HTTP
//! server on 127.0.0.1 that answers every request after a fixed latency, like a payment
//! provider that takes a quarter of a second per call.
//!
//! It runs inside the lab process (a task on the runtime that brought the scenario up), so
//! it dies with the lab whatever happens: there is no child process to leave behind.
//! Dropping the [`Dependency`] stops it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::IntoResponse;
use tokio_util::sync::CancellationToken;

use crate::catalog::{DependencyFault, DependencySpec, FaultAnswer};

/// How many recent calls' bodies the stub keeps for [`Dependency::calls_since`].
const RECENT: usize = 4096;

/// A running stub dependency. Stops when dropped.
#[derive(Debug)]
pub struct Dependency {
    pub spec: DependencySpec,
    pub port: u16,
    ledger: Arc<Mutex<Ledger>>,
    stop: CancellationToken,
}

/// What the stub was asked: the side effects a check verifies (a job charged exactly once).
#[derive(Debug, Default)]
struct Ledger {
    calls: u64,
    /// Calls per value of the spec's `key` field of the JSON body (a retry carrying an
    /// idempotency key already seen is not counted again: the provider applied it once; a
    /// call whose body has no such field, e.g. a GET lookup, is not counted per key).
    per_key: HashMap<String, u64>,
    /// The values of the spec's `idempotency_header` seen so far.
    idempotency_keys: std::collections::HashSet<String>,
    /// The last [`RECENT`] calls' bodies with their number (1-based).
    recent: VecDeque<(u64, serde_json::Value)>,
    /// Set by [`Dependency::trace_header`]: every call's value of that header, from then on.
    traced: Option<(HeaderName, Vec<TracedCall>)>,
    /// Set by [`Dependency::schedule_fault`]: calls arriving inside it get its answer.
    fault: Option<FaultWindow>,
    /// Calls that got the fault's answer since the fault was scheduled.
    faulted: u64,
}

/// A scheduled fault: calls arriving from `from` until `until` get `answer`.
#[derive(Debug, Clone, Copy)]
struct FaultWindow {
    from: Instant,
    until: Instant,
    answer: FaultAnswer,
}

/// A call the stub received while a header was traced: when, and the header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedCall {
    pub at: Instant,
    /// The request's path, e.g. `/authorize`.
    pub path: String,
    /// None when the call did not carry the header.
    pub value: Option<String>,
}

impl Dependency {
    /// Binds a free port on 127.0.0.1 and serves until dropped. Must be called inside a
    /// Tokio runtime that outlives the scenario's services.
    pub async fn start(spec: DependencySpec) -> std::io::Result<Dependency> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let stop = CancellationToken::new();
        let app = axum::Router::new().fallback(answer).with_state(Stub {
            latency: spec.latency,
            key: spec.key.clone(),
            idempotency: spec
                .idempotency_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            ledger: Arc::clone(&ledger),
        });
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
            ledger,
            stop,
        })
    }

    /// `http://127.0.0.1:PORT`, the value of the instances' environment variable.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests answered or in progress since the start.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// The JSON bodies of the calls after call number `after` (a body that is not JSON is a
    /// JSON string), oldest first: what one request made the service send.
    pub fn calls_since(&self, after: u64) -> Vec<serde_json::Value> {
        self.lock()
            .recent
            .iter()
            .filter(|(n, _)| *n > after)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// From now on, records every call's value of `header` with its arrival time (for
    /// `[check.request_ids] propagated`); replaces what an earlier trace recorded. Nothing
    /// is recorded per call until this is called.
    pub fn trace_header(&self, header: HeaderName) {
        self.lock().traced = Some((header, Vec::new()));
    }

    /// The calls recorded since [`Dependency::trace_header`], oldest first, and stops
    /// recording.
    pub fn take_traced(&self) -> Vec<TracedCall> {
        self.lock()
            .traced
            .take()
            .map(|(_, calls)| calls)
            .unwrap_or_default()
    }

    /// From `start + fault.at`, for `fault.lasting`, every call gets the fault's answer
    /// (`[check.dependency_fault]`, with `start` the check load's); replaces an earlier
    /// schedule and its count.
    pub fn schedule_fault(&self, start: Instant, fault: DependencyFault) {
        let mut ledger = self.lock();
        ledger.fault = Some(FaultWindow {
            from: start + fault.at,
            until: start + fault.at + fault.lasting,
            answer: fault.answer,
        });
        ledger.faulted = 0;
    }

    /// Ends the scheduled fault (calls get the usual answer again) and says how many calls
    /// got the fault's answer.
    pub fn end_fault(&self) -> u64 {
        let mut ledger = self.lock();
        ledger.fault = None;
        std::mem::take(&mut ledger.faulted)
    }

    /// Calls so far per value of the spec's key (empty without a key).
    pub fn calls_per_key(&self) -> HashMap<String, u64> {
        self.lock().per_key.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Dependency {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct Stub {
    latency: Duration,
    key: Option<String>,
    idempotency: Option<HeaderName>,
    ledger: Arc<Mutex<Ledger>>,
}

/// Every path and method: note the call, wait the latency, then answer 200 with a small JSON
/// body. The wait is a timer, not work: the point is a slow partner, not a busy one. Inside a
/// scheduled fault the call gets the fault's answer instead: 503 at once and no effect
/// (down), or the effect and a 200 only after the fault's delay (late).
async fn answer(
    State(stub): State<Stub>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let at = Instant::now();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    let (n, fault) = {
        let mut ledger = stub
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ledger.calls += 1;
        let n = ledger.calls;
        let fault = ledger
            .fault
            .filter(|w| w.from <= at && at < w.until)
            .map(|w| w.answer);
        if fault.is_some() {
            ledger.faulted += 1;
        }
        // A down provider does nothing: no effect, and the key is not spent.
        let effect = fault != Some(FaultAnswer::Down);
        // A retry with an idempotency key already seen is the same effect, not a new one.
        let retry = match (
            &stub.idempotency,
            stub.idempotency.as_ref().and_then(|h| headers.get(h)),
        ) {
            (Some(_), Some(value)) if effect => {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                !ledger.idempotency_keys.insert(value)
            }
            _ => false,
        };
        // A call without the key (a lookup, not an effect on one) is not counted per key.
        let value = stub.key.as_ref().and_then(|key| match json.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v) => Some(v.to_string()),
            None => None,
        });
        if let (Some(value), false, true) = (value, retry, effect) {
            *ledger.per_key.entry(value).or_default() += 1;
        }
        if ledger.recent.len() == RECENT {
            ledger.recent.pop_front();
        }
        ledger.recent.push_back((n, json));
        if let Some((header, calls)) = &mut ledger.traced {
            let value = headers
                .get(&*header)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            calls.push(TracedCall {
                at,
                path: uri.path().to_string(),
                value,
            });
        }
        (n, fault)
    };
    let wait = match fault {
        Some(FaultAnswer::Down) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json"), ("retry-after", "1")],
                "{\"error\":\"unavailable\"}",
            )
                .into_response()
        }
        Some(FaultAnswer::Late(late_by)) => late_by,
        None => stub.latency,
    };
    tokio::time::sleep(wait).await;
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        format!("{{\"status\":\"approved\",\"reference\":{n}}}"),
    )
        .into_response()
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
            key: Some("job_id".into()),
            idempotency_header: None,
        })
        .await
        .unwrap();
        let (status, body) = crate::metrics::http_get(dep.port, "/charge", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("approved"), "{body}");
        assert_eq!(dep.calls(), 1);
        assert_eq!(dep.calls_since(0), vec![serde_json::json!("")]);
        assert!(
            dep.calls_per_key().is_empty(),
            "a call without the key field is not counted per key"
        );
        for _ in 0..2 {
            let (status, _) = crate::metrics::http_call(
                dep.port,
                "POST",
                "/charge",
                Some(r#"{"job_id":7,"amount_cents":100}"#),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            assert_eq!(status, 200);
        }
        assert_eq!(dep.calls_per_key().get("7"), Some(&2));
        assert_eq!(
            dep.calls_since(2),
            vec![serde_json::json!({"job_id": 7, "amount_cents": 100})]
        );
        // A traced header: each call's value from then on, and none before.
        dep.trace_header(HeaderName::from_static("x-request-id"));
        crate::metrics::http_get(dep.port, "/charge", Duration::from_secs(5))
            .await
            .unwrap();
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", dep.port))
                .await
                .unwrap();
            tcp.write_all(b"GET /charge HTTP/1.0\r\nX-Request-Id: sdlab-1-9\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            tcp.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
        }
        let traced = dep.take_traced();
        assert_eq!(traced.len(), 2);
        assert_eq!(traced[0].value, None, "sent without the header");
        assert_eq!(traced[1].value.as_deref(), Some("sdlab-1-9"));
        assert_eq!(traced[1].path, "/charge");
        assert!(traced[0].at <= traced[1].at);
        assert!(dep.take_traced().is_empty(), "recording stopped");
        let port = dep.port;
        drop(dep);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(crate::metrics::http_get(port, "/", Duration::from_secs(1))
            .await
            .is_err());
    }

    /// Sends `POST /charge` with a job_id body and, when given, an Idempotency-Key header;
    /// returns the whole answer.
    async fn send(port: u16, job: u32, key: Option<&str>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = format!("{{\"job_id\":{job}}}");
        let header = key.map_or(String::new(), |k| format!("Idempotency-Key: {k}\r\n"));
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let request = format!(
            "POST /charge HTTP/1.0\r\n{header}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// [`send`], answered 200.
    async fn charge(port: u16, job: u32, key: Option<&str>) {
        let answer = send(port, job, key).await;
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    }

    /// A stub answering in 1 ms that counts calls per `job_id` and honours Idempotency-Key.
    async fn fulfilment_stub() -> Dependency {
        Dependency::start(DependencySpec {
            name: "fulfilment".into(),
            env: "FULFILMENT_URL".into(),
            latency: Duration::from_millis(1),
            key: Some("job_id".into()),
            idempotency_header: Some("Idempotency-Key".into()),
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_scheduled_fault_answers_late_with_the_effect_or_503_without_it() {
        let dep = fulfilment_stub().await;
        let window = |answer| DependencyFault {
            at: Duration::from_millis(1),
            lasting: Duration::from_secs(30),
            answer,
        };
        // Late: the shipment is made, the answer comes only after the delay.
        let late_by = Duration::from_millis(300);
        dep.schedule_fault(Instant::now(), window(FaultAnswer::Late(late_by)));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent = Instant::now();
        charge(dep.port, 1, Some("order-1")).await;
        assert!(sent.elapsed() >= late_by, "answered before the delay");
        assert_eq!(dep.calls_per_key().get("1"), Some(&1), "done, if late");
        assert_eq!(dep.end_fault(), 1);
        // Down: 503 and nothing done; the key is not spent, so the retry later is the effect.
        dep.schedule_fault(Instant::now(), window(FaultAnswer::Down));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let answer = send(dep.port, 2, Some("order-2")).await;
        assert!(answer.starts_with("HTTP/1.0 503"), "{answer}");
        assert_eq!(
            dep.calls_per_key().get("2"),
            None,
            "a down provider does nothing"
        );
        assert_eq!(dep.end_fault(), 1);
        charge(dep.port, 2, Some("order-2")).await;
        assert_eq!(dep.calls_per_key().get("2"), Some(&1));
        // A window that has not begun yet changes nothing.
        dep.schedule_fault(
            Instant::now() + Duration::from_secs(60),
            window(FaultAnswer::Down),
        );
        charge(dep.port, 3, None).await;
        assert_eq!(dep.end_fault(), 0);
        assert_eq!(dep.calls(), 4);
    }

    #[tokio::test]
    async fn a_retry_with_a_known_idempotency_key_is_not_a_second_effect() {
        let dep = fulfilment_stub().await;
        charge(dep.port, 7, Some("order-7")).await;
        charge(dep.port, 7, Some("order-7")).await;
        assert_eq!(
            dep.calls_per_key().get("7"),
            Some(&1),
            "the retry is the same effect"
        );
        charge(dep.port, 8, None).await;
        charge(dep.port, 8, None).await;
        assert_eq!(
            dep.calls_per_key().get("8"),
            Some(&2),
            "no key: two effects"
        );
        assert_eq!(
            dep.calls(),
            4,
            "every call was answered and counted as a call"
        );
    }
}
