//! Sends one request over a shared HTTP/1.1 keep-alive client and classifies the outcome.
//!
//! One `hyper-util` legacy [`Client`] per run pools connections to the target, like a
//! browser or a service-to-service client would. The per-request deadline covers connecting,
//! the response head and the whole body, so a stalled body counts as a timeout too.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{header, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::params::Rendered;
use super::plan::Method;
use super::record::{ErrorKind, Outcome, RequestRecord};
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
        request: Rendered,
    ) -> RequestRecord {
        let sent_at = Instant::now();
        let deadline = sent_at + self.timeout;
        let outcome = match tokio::time::timeout_at(deadline.into(), self.exchange(request)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Outcome::Error(ErrorKind::Timeout),
        };
        let done_at = Instant::now();
        RequestRecord {
            template,
            intended_at,
            sent_at,
            done_at,
            deadline,
            outcome,
        }
    }

    async fn exchange(&self, request: Rendered) -> Outcome {
        let request = match self.build(request) {
            Ok(request) => request,
            Err(error) => {
                // Unreachable in practice: templates are validated when the mix is compiled.
                tracing::warn!(%error, "could not build a load request");
                return Outcome::Error(ErrorKind::Io);
            }
        };
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(error) if error.is_connect() => return Outcome::Error(ErrorKind::Connect),
            Err(_) => return Outcome::Error(ErrorKind::Io),
        };
        let status = response.status().as_u16();
        // Read the whole body: the user waits for it, and the connection is reused only then.
        match response.into_body().collect().await {
            Ok(_) => Outcome::Status(status),
            Err(_) => Outcome::Error(ErrorKind::Io),
        }
    }

    fn build(&self, request: Rendered) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let method = match request.method {
            Method::Get => hyper::Method::GET,
            Method::Post => hyper::Method::POST,
            Method::Put => hyper::Method::PUT,
            Method::Delete => hyper::Method::DELETE,
        };
        let builder = Request::builder()
            .method(method)
            .uri(self.target.uri(&request.path)?);
        match request.body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body))),
            None => builder.body(Full::new(Bytes::new())),
        }
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
}
