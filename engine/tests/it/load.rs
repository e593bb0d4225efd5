//! The load generator against real HTTP servers started in the test on 127.0.0.1:0.

// Test helpers unwrap too: a failed setup must fail the test loudly (clippy only exempts
// the test functions themselves).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;
use sdlab_engine::load::{
    run, ErrorKind, LoadError, LoadPlan, Method, Model, ParamGen, RequestTemplate, RunSummary,
    SecondStats, Stage,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server on a free loopback port, stopped when dropped.
struct Server {
    url: String,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { url, task }
}

/// Every request the server saw: method, path and query, body.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// Answers 200 to everything and remembers each request.
async fn recording_server() -> (Server, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(|State(seen): State<Seen>, method: axum::http::Method, uri: Uri, body: String| async move {
            seen.lock().unwrap().push((method.to_string(), uri.to_string(), body));
            "ok"
        })
        .with_state(Arc::clone(&seen));
    (serve(app).await, seen)
}

fn plan(base_url: &str, stages: Vec<Stage>) -> LoadPlan {
    LoadPlan {
        targets: vec![base_url.to_owned()],
        stages,
        mix: vec![RequestTemplate::get("root", "/")],
        timeout: Duration::from_secs(5),
        max_in_flight: 1000,
        seed: 42,
        model: Model::Open,
        sessions: None,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Runs to the end, collecting the per-second stats.
async fn run_collecting(plan: LoadPlan) -> (RunSummary, Vec<SecondStats>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let summary = run(plan, Some(tx), CancellationToken::new()).await.unwrap();
    let mut seconds = Vec::new();
    while let Ok(stats) = rx.try_recv() {
        seconds.push(stats);
    }
    (summary, seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_rate_sends_the_planned_count() {
    let (server, seen) = recording_server().await;
    // The run stops by itself (the bound only catches a run that never ends).
    let (summary, seconds) = tokio::time::timeout(
        secs(60.0),
        run_collecting(plan(&server.url, vec![Stage::constant(secs(2.0), 200.0)])),
    )
    .await
    .expect("a 2 s plan never ended");
    assert_eq!(summary.sent, 400);
    let received = seen.lock().unwrap().len();
    assert!(
        (380..=420).contains(&received),
        "server saw {received} requests"
    );
    assert_eq!(summary.ok, 400);
    assert_eq!(summary.error_rate, 0.0);
    assert!(
        (summary.offered_rate - 200.0).abs() < 1.0,
        "{}",
        summary.offered_rate
    );
    assert_eq!(seconds.iter().map(|s| s.second).collect::<Vec<_>>(), [0, 1]);
    assert!(seconds.iter().all(|s| s.sent == 200), "{seconds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_of_one_second_shows_in_p99() {
    // Requests wait while the gate is closed, from t = 1 s to t = 2 s.
    let (gate, gate_rx) = tokio::sync::watch::channel(true);
    let app = Router::new()
        .fallback(
            |State(mut gate): State<tokio::sync::watch::Receiver<bool>>| async move {
                let _ = gate.wait_for(|open| *open).await;
                "ok"
            },
        )
        .with_state(gate_rx);
    let server = serve(app).await;
    tokio::spawn(async move {
        tokio::time::sleep(secs(1.0)).await;
        gate.send_replace(false);
        tokio::time::sleep(secs(1.0)).await;
        gate.send_replace(true);
    });

    let (summary, seconds) =
        run_collecting(plan(&server.url, vec![Stage::constant(secs(4.0), 100.0)])).await;

    assert_eq!(summary.ok, 400);
    assert!(
        summary.latency.p99 >= Duration::from_millis(800),
        "p99 {:?}",
        summary.latency.p99
    );
    assert!(
        summary.latency.p50 < Duration::from_millis(100),
        "p50 {:?}",
        summary.latency.p50
    );
    // The stall shows in the second the requests were due, with the queue at its end.
    let stalled = &seconds[1];
    assert!(stalled.p99 >= Duration::from_millis(800), "{stalled:?}");
    assert!(stalled.in_flight >= 50, "{stalled:?}");
    assert!(
        seconds[3].p99 < Duration::from_millis(500),
        "{:?}",
        seconds[3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_count_as_errors_and_in_latency() {
    // Answers after 3 s, and counts the answers it got to send.
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    let app = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            tokio::time::sleep(secs(3.0)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            "late"
        }
    });
    let server = serve(app).await;
    let mut plan = plan(&server.url, vec![Stage::constant(secs(1.0), 50.0)]);
    plan.timeout = Duration::from_millis(200);

    let (summary, seconds) = run_collecting(plan).await;

    // The run gave up on every request after its timeout instead of waiting for the answers.
    assert_eq!(
        answered.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the run waited for late answers"
    );
    assert_eq!(summary.sent, 50);
    assert_eq!(summary.failed, 50);
    assert_eq!(summary.error_rate, 1.0);
    assert_eq!(summary.errors, BTreeMap::from([("timeout".to_owned(), 50)]));
    assert!(
        summary.latency.p50 >= Duration::from_millis(200),
        "{:?}",
        summary.latency
    );
    assert_eq!(summary.histogram.len(), 50);
    assert_eq!(
        seconds[0].errors,
        BTreeMap::from([(ErrorKind::Timeout, 50)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_counts_as_connect_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut plan = plan(&url, vec![Stage::constant(secs(0.5), 40.0)]);
    plan.timeout = Duration::from_millis(300);

    let (summary, seconds) = run_collecting(plan).await;

    assert_eq!(summary.sent, 20);
    assert_eq!(summary.ok, 0);
    assert_eq!(summary.errors, BTreeMap::from([("connect".to_owned(), 20)]));
    assert_eq!(
        seconds[0].errors,
        BTreeMap::from([(ErrorKind::Connect, 20)])
    );
    // A refused request never answered: it must not look fast.
    assert!(
        summary.latency.p50 >= Duration::from_millis(300),
        "{:?}",
        summary.latency
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_stage_increases_rate() {
    let (server, seen) = recording_server().await;
    let stages = vec![
        Stage::ramp(secs(2.0), 20.0, 200.0),
        Stage::constant(secs(1.0), 200.0),
    ];

    let (summary, seconds) = run_collecting(plan(&server.url, stages)).await;

    // 20 -> 200/s over 2 s is 220 requests (65 then 155), then 200.
    assert_eq!(summary.sent, 420);
    assert_eq!(seen.lock().unwrap().len(), 420);
    let sent: Vec<u64> = seconds.iter().map(|s| s.sent).collect();
    assert_eq!(sent, [65, 155, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mix_weights_are_respected() {
    let (server, seen) = recording_server().await;
    let mut plan = plan(&server.url, vec![Stage::constant(secs(1.0), 400.0)]);
    plan.mix = vec![
        RequestTemplate {
            weight: 3,
            ..RequestTemplate::get("read", "/read")
        },
        RequestTemplate {
            weight: 1,
            method: Method::Post,
            body: Some("{}".into()),
            ..RequestTemplate::get("write", "/write")
        },
    ];

    let (summary, _) = run_collecting(plan).await;

    let seen = seen.lock().unwrap();
    let reads = seen
        .iter()
        .filter(|(m, p, _)| m == "GET" && p == "/read")
        .count();
    let writes = seen
        .iter()
        .filter(|(m, p, b)| m == "POST" && p == "/write" && b == "{}")
        .count();
    assert_eq!(reads + writes, 400);
    let share = reads as f64 / 400.0;
    assert!(
        (0.70..=0.80).contains(&share),
        "reads are {share} of the mix"
    );
    assert_eq!(summary.per_template[0].0, "read");
    assert_eq!(summary.per_template[0].1.sent, reads as u64);
    assert_eq!(summary.per_template[1].1.sent, writes as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipf_favours_low_ranks() {
    let (server, seen) = recording_server().await;
    let mut plan = plan(&server.url, vec![Stage::constant(secs(1.0), 400.0)]);
    plan.mix = vec![RequestTemplate {
        params: BTreeMap::from([("id".to_owned(), ParamGen::Zipf { n: 1000, s: 1.1 })]),
        ..RequestTemplate::get("item", "/items/{id}")
    }];

    run_collecting(plan).await;

    let mut hits: HashMap<u64, usize> = HashMap::new();
    for (_, path, _) in seen.lock().unwrap().iter() {
        *hits
            .entry(path.trim_start_matches("/items/").parse().unwrap())
            .or_default() += 1;
    }
    let hottest = hits.iter().max_by_key(|(_, n)| **n).map(|(id, _)| *id);
    assert_eq!(hottest, Some(1));
    let top_ten: usize = hits
        .iter()
        .filter(|(id, _)| **id <= 10)
        .map(|(_, n)| n)
        .sum();
    // About 48% in theory; uniform ids would give 1%.
    assert!(top_ten > 400 * 3 / 10, "ids 1..=10 got {top_ten} of 400");
    assert!(hits.keys().all(|id| (1..=1000).contains(id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_are_deterministic_for_a_seed() {
    async fn requests_for(seed: u64) -> Vec<(String, String, String)> {
        let (server, seen) = recording_server().await;
        let mut plan = plan(&server.url, vec![Stage::constant(secs(0.5), 100.0)]);
        plan.seed = seed;
        plan.mix = vec![
            RequestTemplate {
                params: BTreeMap::from([(
                    "user_id".to_owned(),
                    ParamGen::Uniform {
                        min: 1,
                        max: 1_000_000,
                    },
                )]),
                ..RequestTemplate::get("user", "/users/{user_id}/posts")
            },
            RequestTemplate {
                method: Method::Post,
                body: Some(r#"{"tag": "{tag}", "n": {n}}"#.into()),
                params: BTreeMap::from([
                    (
                        "tag".to_owned(),
                        ParamGen::Choice(vec!["a".into(), "b".into(), "c".into()]),
                    ),
                    ("n".to_owned(), ParamGen::Sequence { start: 1 }),
                ]),
                ..RequestTemplate::get("post", "/posts")
            },
        ];
        run_collecting(plan).await;
        let mut seen = seen.lock().unwrap().clone();
        // Requests overlap on the wire, so compare them as a set.
        seen.sort();
        seen
    }

    let first = requests_for(7).await;
    assert_eq!(first.len(), 50);
    assert_eq!(first, requests_for(7).await);
    assert_ne!(first, requests_for(8).await);
}

#[tokio::test]
async fn non_loopback_target_is_rejected() {
    for url in ["http://10.1.2.3:8080", "http://example.com/"] {
        let result = run(
            plan(url, vec![Stage::constant(secs(1.0), 10.0)]),
            None,
            CancellationToken::new(),
        )
        .await;
        match result {
            Err(error @ LoadError::NotLoopback { .. }) => {
                assert!(error.to_string().contains("loopback"), "{error}")
            }
            other => panic!("expected NotLoopback for {url}, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_in_flight_arrivals_are_dropped_and_counted() {
    let app = Router::new().fallback(|| async {
        tokio::time::sleep(secs(0.5)).await;
        "slow"
    });
    let server = serve(app).await;
    let mut plan = plan(&server.url, vec![Stage::constant(secs(1.0), 40.0)]);
    plan.max_in_flight = 5;

    let (summary, _) = run_collecting(plan).await;

    assert_eq!(summary.sent, 40);
    let dropped = summary.errors.get("dropped").copied().unwrap_or(0);
    assert!(dropped >= 20, "{:?}", summary.errors);
    assert_eq!(summary.ok + dropped, 40);
    assert!(
        summary.latency.p50 >= Duration::from_secs(5),
        "dropped count until their deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_keeps_at_most_users_in_flight() {
    let in_flight = Arc::new(Mutex::new((0u32, 0u32))); // (now, peak)
    let app = Router::new()
        .fallback(
            |State(in_flight): State<Arc<Mutex<(u32, u32)>>>| async move {
                {
                    let mut g = in_flight.lock().unwrap();
                    g.0 += 1;
                    g.1 = g.1.max(g.0);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                in_flight.lock().unwrap().0 -= 1;
                "ok"
            },
        )
        .with_state(Arc::clone(&in_flight));
    let server = serve(app).await;
    let mut plan = plan(&server.url, vec![Stage::constant(secs(1.0), 0.0)]);
    plan.model = Model::Closed { users: 4 };

    let (summary, seconds) = run_collecting(plan).await;

    assert_eq!(in_flight.lock().unwrap().1, 4);
    // 4 users x 1 s / ~50 ms each: about 80 requests, fewer on a busy machine.
    assert!((40..=84).contains(&summary.sent), "{}", summary.sent);
    assert_eq!(summary.ok, summary.sent);
    assert_eq!(seconds.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_run_early() {
    let (server, _) = recording_server().await;
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(secs(0.5)).await;
        stop.cancel();
    });

    // Returns long before the plan's 30 s (the bound only catches a run that ignores cancel).
    let summary = tokio::time::timeout(
        secs(20.0),
        run(
            plan(&server.url, vec![Stage::constant(secs(30.0), 100.0)]),
            None,
            cancel,
        ),
    )
    .await
    .expect("the cancelled run went on")
    .unwrap();

    assert!(summary.duration < secs(1.0), "{:?}", summary.duration);
    assert!((30..=70).contains(&summary.sent), "{}", summary.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_counted_by_status() {
    let app = Router::new().fallback(|| async { (StatusCode::SERVICE_UNAVAILABLE, "busy") });
    let server = serve(app).await;

    let (summary, seconds) =
        run_collecting(plan(&server.url, vec![Stage::constant(secs(0.5), 40.0)])).await;

    assert_eq!(
        summary.errors,
        BTreeMap::from([("http 503".to_owned(), 20)])
    );
    assert_eq!(summary.failed, 20);
    assert_eq!(seconds[0].http_errors, BTreeMap::from([(503, 20)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_last_stage_still_lasts_its_duration() {
    let (server, _) = recording_server().await;
    let stages = vec![
        Stage::constant(secs(1.0), 20.0),
        Stage::constant(secs(1.0), 0.0),
    ];

    let began = Instant::now();
    let (summary, seconds) = run_collecting(plan(&server.url, stages)).await;

    assert!(began.elapsed() >= secs(2.0), "{:?}", began.elapsed());
    assert_eq!(summary.sent, 20);
    assert_eq!(
        seconds
            .iter()
            .map(|s| (s.second, s.sent))
            .collect::<Vec<_>>(),
        [(0, 20), (1, 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_targets_take_the_arrivals_in_turn_and_a_dead_one_fails_fast() {
    // Client-side round robin: three instances, no balancer in front.
    let servers = [
        recording_server().await,
        recording_server().await,
        recording_server().await,
    ];
    let mut p = plan(&servers[0].0.url, vec![Stage::constant(secs(1.0), 90.0)]);
    p.targets = servers.iter().map(|(s, _)| s.url.clone()).collect();
    let (summary, _) = run_collecting(p.clone()).await;
    assert_eq!((summary.sent, summary.ok), (90, 90));
    let counts: Vec<usize> = servers
        .iter()
        .map(|(_, seen)| seen.lock().unwrap().len())
        .collect();
    assert_eq!(counts, [30, 30, 30]);

    // One target gone (its port closed): its third of the arrivals are connect errors,
    // counted at once rather than waited on, and the others are still served.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    p.targets[1] = dead;
    let (summary, _) = run_collecting(p).await;
    assert_eq!(summary.ok, 60, "{summary:?}");
    assert_eq!(
        summary.errors.get("connect"),
        Some(&30),
        "{:?}",
        summary.errors
    );
}

#[tokio::test]
async fn an_empty_target_list_is_a_plan_error() {
    let mut p = plan("http://127.0.0.1:1", vec![Stage::constant(secs(1.0), 1.0)]);
    p.targets.clear();
    let err = run(p, None, CancellationToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
}

/// A server that holds the first attempt of each `Idempotency-Key` for 1 s (past the
/// client's timeout) and answers a repeat at once; it remembers every (key, body) it saw.
async fn slow_first_time_server() -> (Server, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(
            |State(seen): State<Seen>, headers: axum::http::HeaderMap, body: String| async move {
                let key = headers
                    .get("idempotency-key")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let first = {
                    let mut seen = seen.lock().unwrap();
                    let first = !seen.iter().any(|(k, _, _)| *k == key);
                    seen.push((key, String::new(), body));
                    first
                };
                if first {
                    tokio::time::sleep(secs(1.0)).await;
                }
                "ok"
            },
        )
        .with_state(Arc::clone(&seen));
    (serve(app).await, seen)
}

fn retrying_plan(url: &str, retries: u32) -> LoadPlan {
    let mut plan = plan(url, vec![Stage::constant(secs(1.0), 20.0)]);
    plan.timeout = Duration::from_millis(200);
    plan.mix = vec![RequestTemplate {
        method: Method::Post,
        body: Some(r#"{"order": {order}}"#.into()),
        params: BTreeMap::from([("order".to_owned(), ParamGen::Sequence { start: 1 })]),
        headers: vec![("Idempotency-Key".into(), "order-{order}".into())],
        retries,
        ..RequestTemplate::get("pay", "/payments")
    }];
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrying_client_resends_the_same_request_after_a_timeout_under_its_own_kind() {
    let (server, seen) = slow_first_time_server().await;
    let (summary, _) = run_collecting(retrying_plan(&server.url, 2)).await;

    // Every first attempt timed out; its one resend (same key, same body) was answered, so
    // the second resend allowed was never needed.
    let kinds: BTreeMap<_, _> = summary
        .per_template
        .iter()
        .map(|(name, t)| (name.as_str(), (t.sent, t.ok, t.failed)))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([("pay", (20, 0, 20)), ("pay (retry)", (20, 20, 0))]),
        "{:?}",
        summary.per_template
    );
    assert_eq!(summary.sent, 40, "arrivals and resends");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 40);
    for n in 1..=20 {
        let key = format!("order-{n}");
        let bodies: Vec<&str> = seen
            .iter()
            .filter(|(k, _, _)| *k == key)
            .map(|(_, _, b)| b.as_str())
            .collect();
        let body = format!(r#"{{"order": {n}}}"#);
        assert_eq!(bodies, [body.as_str(), body.as_str()], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_stop_after_the_templates_retries_and_a_closed_model_refuses_them() {
    // Always slower than the timeout: each arrival is sent 1 + 2 times, then given up.
    let app = Router::new().fallback(|| async {
        tokio::time::sleep(secs(1.0)).await;
        "late"
    });
    let server = serve(app).await;
    let mut plan = retrying_plan(&server.url, 2);
    plan.stages = vec![Stage::constant(secs(0.5), 20.0)];
    let (summary, _) = run_collecting(plan.clone()).await;
    let kinds: BTreeMap<_, _> = summary
        .per_template
        .iter()
        .map(|(name, t)| (name.as_str(), (t.sent, t.failed)))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([("pay", (10, 10)), ("pay (retry)", (20, 20))])
    );
    assert_eq!(summary.errors, BTreeMap::from([("timeout".to_owned(), 30)]));

    plan.model = Model::Closed { users: 2 };
    let err = run(plan, None, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("mix (pay).retries"), "{err}");
}
