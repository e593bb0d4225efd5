//! Sends requests over HTTP/1.1 keep-alive connections and classifies the outcomes.
//!
//! Two clients, one per load model:
//! - [`Sender`] (open model): one `hyper-util` legacy [`Client`] per target pools connections,
//!   like a browser or a service-to-service client would, since any number of requests may
//!   overlap.
//! - [`Connection`] (closed model): one connection owned by one virtual user, who never has
//!   two requests out at once, so it needs no pool.
//!
//! Either way the per-request deadline covers connecting, the response head and the whole
//! body, so a stalled body counts as a timeout too.

use std::net::IpAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::http::HeaderValue;
use hyper::{header, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::params::Rendered;
use super::plan::Method;
use super::record::{ErrorKind, Outcome, RequestRecord};
use super::request_ids::{Echo, IdTag};
use super::LoadError;

/// A load target: an `http` base URL on a loopback address.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    authority: Authority,
    /// Path prefix without a trailing `/` (often empty).
    prefix: String,
}

impl Target {
    /// Accepts `http://127.0.0.1:PORT[/prefix]`, any other loopback IP, or `localhost`.
    pub fn parse(base_url: &str) -> Result<Self, LoadError> {
        let problem = |problem: String| LoadError::Target {
            url: base_url.to_owned(),
            problem,
        };
        let uri: Uri = base_url
            .parse()
            .map_err(|e| problem(format!("not a URL: {e}")))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(problem(
                "expected an http:// URL (the load generator does not speak TLS)".into(),
            ));
        }
        let (Some(authority), Some(host)) = (uri.authority(), uri.host()) else {
            return Err(problem(
                "expected a host, e.g. http://127.0.0.1:8080".into(),
            ));
        };
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        if !(host.eq_ignore_ascii_case("localhost") || ip.is_ok_and(|ip| ip.is_loopback())) {
            return Err(LoadError::NotLoopback {
                url: base_url.to_owned(),
                host: host.to_owned(),
            });
        }
        if uri.query().is_some() {
            return Err(problem("expected no query string in the base URL".into()));
        }
        Ok(Self {
            authority: authority.clone(),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The port on the loopback host (80 when the URL names none).
    pub fn port(&self) -> u16 {
        self.authority.port_u16().unwrap_or(80)
    }

    /// `path` under the target's prefix.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    fn uri(&self, path: &str) -> Result<Uri, hyper::http::Error> {
        let path_and_query = PathAndQuery::try_from(format!("{}{path}", self.prefix))?;
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// The client of one run.
#[derive(Clone)]
pub(crate) struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    target: Target,
    timeout: Duration,
}

impl Sender {
    pub fn new(target: Target, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        // Requests are small; do not let Nagle's algorithm add 40 ms to them.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            target,
            timeout,
        }
    }

    /// Sends the request now and waits for the whole response, at most until the deadline.
    pub async fn send(
        &self,
        template: usize,
        intended_at: Instant,
        mut request: Rendered,
    ) -> RequestRecord {
        let tag = request.request_id.take();
        let sent_at = Instant::now();
        let deadline = sent_at + self.timeout;
        let exchange = self.exchange(request, tag.as_deref());
        let (outcome, echo) = match tokio::time::timeout_at(deadline.into(), exchange).await {
            Ok(answer) => answer,
            Err(_elapsed) => (Outcome::Error(ErrorKind::Timeout), Echo::NoAnswer),
        };
        let done_at = Instant::now();
        if let Some(tag) = &tag {
            tag.record(sent_at, done_at, &outcome, echo);
        }
        RequestRecord {
            template,
            intended_at,
            sent_at,
            done_at,
            deadline,
            outcome,
        }
    }

    /// The outcome, and (for a request with an ID) what the answer's ID header said.
    async fn exchange(&self, request: Rendered, tag: Option<&IdTag>) -> (Outcome, Echo) {
        let failed = |kind| (Outcome::Error(kind), Echo::NoAnswer);
        let request = match self.build(request, tag) {
            Ok(request) => request,
            Err(error) => {
                // Unreachable in practice: templates are validated when the mix is compiled.
                tracing::warn!(%error, "could not build a load request");
                return failed(ErrorKind::Io);
            }
        };
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(error) if error.is_connect() => return failed(ErrorKind::Connect),
            Err(_) => return failed(ErrorKind::Io),
        };
        let status = response.status().as_u16();
        let echo = tag.map_or(Echo::NoAnswer, |t| t.echo(response.headers()));
        // Read the whole body: the user waits for it, and the connection is reused only then.
        match response.into_body().collect().await {
            Ok(_) => (Outcome::Status(status), echo),
            Err(_) => failed(ErrorKind::Io),
        }
    }

    fn build(
        &self,
        request: Rendered,
        tag: Option<&IdTag>,
    ) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let mut builder = Request::builder()
            .method(hyper_method(request.method))
            .uri(self.target.uri(&request.path)?);
        if let Some(token) = &request.auth {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(tag) = tag {
            builder = builder.header(tag.header(), tag.value.clone());
        }
        match request.body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body))),
            None => builder.body(Full::new(Bytes::new())),
        }
    }
}

/// One keep-alive HTTP/1.1 connection to one target, owned by the task that uses it.
///
/// The closed model's fast path (see `users.rs`): the owning task drives the connection
/// itself while it waits for a response, so a request costs no task spawn, no pool checkout
/// and no hand-off to a connection task. A failed or timed-out request drops the connection;
/// the next request connects again (and that connect counts in its latency).
pub(crate) struct Connection {
    target: Target,
    host: HeaderValue,
    timeout: Duration,
    link: Option<Link>,
    /// One timer for the connection instead of one per request: it is re-armed only when it
    /// fires early (see [`expired`]), so a request that is answered in time never touches it.
    timer: Pin<Box<Sleep>>,
}

/// An open connection: the handle requests go through and the connection it feeds.
struct Link {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
}

impl Connection {
    /// Does not connect yet: the first request does. Must be called inside the runtime.
    pub fn new(target: Target, timeout: Duration) -> Self {
        let host = HeaderValue::from_str(target.authority.as_str())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            target,
            host,
            timeout,
            link: None,
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Sends the request now and waits for the whole response, at most until the deadline.
    pub async fn send(
        &mut self,
        template: usize,
        intended_at: Instant,
        mut request: Rendered,
    ) -> RequestRecord {
        let tag = request.request_id.take();
        let sent_at = Instant::now();
        let deadline = sent_at + self.timeout;
        let (outcome, echo) = match self.build(request, tag.as_deref()) {
            Ok(request) => {
                let Self {
                    target,
                    timer,
                    link,
                    ..
                } = self;
                tokio::select! {
                    biased;
                    answer = exchange(target, link, request, tag.as_deref()) => answer,
                    () = expired(timer, deadline) => (Outcome::Error(ErrorKind::Timeout), Echo::NoAnswer),
                }
            }
            Err(error) => {
                // Unreachable in practice: templates are validated when the mix is compiled.
                tracing::warn!(%error, "could not build a load request");
                (Outcome::Error(ErrorKind::Io), Echo::NoAnswer)
            }
        };
        if let Some(tag) = &tag {
            tag.record(sent_at, Instant::now(), &outcome, echo);
        }
        if matches!(outcome, Outcome::Error(_)) {
            // Whatever was left half-sent or half-read on it, start the next request afresh.
            self.link = None;
        }
        RequestRecord {
            template,
            intended_at,
            sent_at,
            done_at: Instant::now(),
            deadline,
            outcome,
        }
    }

    /// An origin-form request (`GET /path`) with the `Host` header: the form a client sends
    /// on a connection it opened itself. Built field by field: this runs for every request of
    /// a full-speed run, and the builder's checks would repeat what `Mix` already validated.
    fn build(
        &self,
        request: Rendered,
        tag: Option<&IdTag>,
    ) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let path = if self.target.prefix.is_empty() {
            request.path
        } else {
            format!("{}{}", self.target.prefix, request.path)
        };
        let auth = match &request.auth {
            Some(token) => Some(HeaderValue::from_str(&format!("Bearer {token}"))?),
            None => None,
        };
        let (body, content_type) = match request.body {
            Some(body) => (
                Bytes::from(body),
                Some(HeaderValue::from_static("application/json")),
            ),
            None => (Bytes::new(), None),
        };
        let mut built = Request::new(Full::new(body));
        *built.method_mut() = hyper_method(request.method);
        *built.uri_mut() = Uri::try_from(path)?;
        let headers = built.headers_mut();
        headers.reserve(3);
        headers.insert(header::HOST, self.host.clone());
        if let Some(content_type) = content_type {
            headers.insert(header::CONTENT_TYPE, content_type);
        }
        if let Some(auth) = auth {
            headers.insert(header::AUTHORIZATION, auth);
        }
        if let Some(tag) = tag {
            headers.insert(tag.header().clone(), tag.value.clone());
        }
        Ok(built)
    }
}

/// Connects if there is no usable connection, then sends the request and reads the whole
/// response while driving the connection. Returns the outcome and, for a request with an
/// ID, what the answer's ID header said.
async fn exchange(
    target: &Target,
    link: &mut Option<Link>,
    request: Request<Full<Bytes>>,
    tag: Option<&IdTag>,
) -> (Outcome, Echo) {
    if let Err(kind) = make_ready(target, link).await {
        return (Outcome::Error(kind), Echo::NoAnswer);
    }
    let Some(Link { sender, conn }) = link else {
        return (Outcome::Error(ErrorKind::Connect), Echo::NoAnswer);
    };
    let response = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let echo = tag.map_or(Echo::NoAnswer, |t| t.echo(response.headers()));
        // Read the whole body: the user waits for it, and the connection is reused only then.
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok::<_, hyper::Error>((status, echo))
    };
    let mut response = std::pin::pin!(response);
    let status = tokio::select! {
        biased;
        status = &mut response => status,
        // The connection ended. What it read before may still complete the response (the
        // server answered, then closed: `Connection: close`); if not, the response fails.
        _ = conn => response.await,
    };
    match status {
        Ok((status, echo)) => (Outcome::Status(status), echo),
        Err(_) => (Outcome::Error(ErrorKind::Io), Echo::NoAnswer),
    }
}

/// Leaves in `link` a connection that takes a request: the open one, or a new one when there
/// is none or the server closed it since the last response (as after `Connection: close`).
async fn make_ready(target: &Target, link: &mut Option<Link>) -> Result<(), ErrorKind> {
    if let Some(open) = link {
        if open.ready().await {
            return Ok(());
        }
    }
    *link = None;
    // Boxed: connecting is rare, and its future would otherwise make every request's future
    // larger (and costlier to move) than the request itself needs.
    let mut open = Box::pin(connect(target))
        .await
        .map_err(|()| ErrorKind::Connect)?;
    if !open.ready().await {
        return Err(ErrorKind::Connect);
    }
    *link = Some(open);
    Ok(())
}

impl Link {
    /// Drives the connection until it takes a request (`true`) or ends (`false`).
    async fn ready(&mut self) -> bool {
        tokio::select! {
            biased;
            ready = self.sender.ready() => ready.is_ok(),
            _ = &mut self.conn => false,
        }
    }
}

async fn connect(target: &Target) -> Result<Link, ()> {
    let host = target
        .authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = target.authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port)).await.map_err(|_| ())?;
    // Requests are small; do not let Nagle's algorithm add 40 ms to them.
    stream.set_nodelay(true).map_err(|_| ())?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ())?;
    Ok(Link { sender, conn })
}

/// Resolves once `deadline` has passed. The timer fires at the deadline of some earlier
/// request of the connection (never later than this one's, since deadlines only grow); when
/// it fires early it is moved to this deadline, so it is re-armed about once per timeout
/// rather than once per request.
async fn expired(timer: &mut Pin<Box<Sleep>>, deadline: Instant) {
    loop {
        timer.as_mut().await;
        if Instant::now() >= deadline {
            return;
        }
        timer.as_mut().reset(deadline.into());
    }
}

/// The plan's method as hyper's (the sender's requests, the check's answers).
pub(crate) fn hyper_method(method: Method) -> hyper::Method {
    match method {
        Method::Get => hyper::Method::GET,
        Method::Post => hyper::Method::POST,
        Method::Put => hyper::Method::PUT,
        Method::Delete => hyper::Method::DELETE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_are_accepted() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.0.0.2:1/api/",
            "http://[::1]:9",
            "http://localhost:3000",
        ] {
            assert!(Target::parse(url).is_ok(), "{url}");
        }
        let target = Target::parse("http://127.0.0.1:8080/api/").unwrap();
        assert_eq!(
            target.uri("/users/1").unwrap().to_string(),
            "http://127.0.0.1:8080/api/users/1"
        );
    }

    #[test]
    fn other_hosts_and_schemes_are_rejected() {
        for url in [
            "http://10.0.0.1:80",
            "http://example.com",
            "http://0.0.0.0:80",
        ] {
            assert!(
                matches!(Target::parse(url), Err(LoadError::NotLoopback { .. })),
                "{url}"
            );
        }
        assert!(matches!(
            Target::parse("https://127.0.0.1:1"),
            Err(LoadError::Target { .. })
        ));
        assert!(matches!(
            Target::parse("127.0.0.1:1"),
            Err(LoadError::Target { .. })
        ));
    }

    /// An axum app on a free loopback port; the task ends with the test's runtime.
    async fn serve(app: axum::Router) -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Target::parse(&url).unwrap()
    }

    fn get(path: &str) -> Rendered {
        Rendered {
            method: Method::Get,
            path: path.to_owned(),
            body: None,
            auth: None,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_reopened_for_the_next_request() {
        // `Connection: close` on every answer, as nginx does after `keepalive_requests`.
        let app =
            axum::Router::new().fallback(|| async { ([(header::CONNECTION, "close")], "ok") });
        let mut connection = Connection::new(serve(app).await, Duration::from_secs(5));
        for i in 0..3 {
            let record = connection.send(0, Instant::now(), get("/")).await;
            assert_eq!(record.outcome, Outcome::Status(200), "request {i}");
        }
    }

    #[tokio::test]
    async fn a_stalled_answer_times_out_and_the_next_request_gets_a_new_connection() {
        let app = axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(|| tokio::time::sleep(Duration::from_secs(30))),
            )
            .route("/fast", axum::routing::get(|| async { "ok" }));
        let mut connection = Connection::new(serve(app).await, Duration::from_millis(300));
        let fast = connection.send(0, Instant::now(), get("/fast")).await;
        assert_eq!(fast.outcome, Outcome::Status(200));
        let slow = connection.send(0, Instant::now(), get("/slow")).await;
        assert_eq!(slow.outcome, Outcome::Error(ErrorKind::Timeout));
        assert!(slow.done_at >= slow.deadline, "not before its deadline");
        let after = connection.send(0, Instant::now(), get("/fast")).await;
        assert_eq!(after.outcome, Outcome::Status(200));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let mut connection = Connection::new(Target::parse(&url).unwrap(), Duration::from_secs(5));
        let record = connection.send(0, Instant::now(), get("/")).await;
        assert_eq!(record.outcome, Outcome::Error(ErrorKind::Connect));
    }
}
