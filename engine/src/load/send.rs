//! Sends requests over HTTP/1.1 keep-alive connections and classifies the outcomes.
//!
//! The lab's own client, on tokio's `TcpStream` (the way wrk does it): a [`Connection`] is
//! one socket that carries one request at a time. Its request is written into a reused
//! buffer in one `write` (`http1::write_request`), its answer read with one `read` when it is
//! small, and parsed by `http1::ResponseReader`, which counts the body instead of keeping it.
//! Nothing is spawned, pooled or boxed per request. Both load models use it:
//! - the closed model (`users.rs`): each virtual user owns one connection per target;
//! - the open model ([`Sender`]): requests overlap freely, so each takes an idle connection
//!   of its target, or a new one when all are busy, and puts it back when done: there are
//!   never more connections than requests in flight.
//!
//! The per-request deadline covers connecting, the head and the whole body, so a stalled body
//! counts as a timeout too. A request that fails or times out drops its connection; the next
//! one connects again (and that connect counts in its latency).

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hyper::http::uri::{Authority, Scheme};
use hyper::Uri;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::http1::{write_request, ResponseReader};
use super::params::Rendered;
use super::plan::Method;
use super::record::{ErrorKind, Outcome, RequestRecord};
use super::request_ids::Echo;
use super::LoadError;

/// A connection's read buffer to start with; it grows when reads fill it (large bodies) or a
/// head does not fit, up to [`MAX_BUFFER`].
const BUFFER: usize = 8 * 1024;
/// The largest read buffer, and so the largest answer head the client takes.
const MAX_BUFFER: usize = 64 * 1024;

/// A load target: an `http` base URL on a loopback address.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    authority: Authority,
    /// Path prefix without a trailing `/` (often empty).
    prefix: String,
    /// The `Host` header line, rendered once.
    host_line: Vec<u8>,
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
            host_line: format!("host: {authority}\r\n").into_bytes(),
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

    /// The host to connect to, without an IPv6 literal's brackets.
    fn host(&self) -> &str {
        self.authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
    }
}

/// The open model's client of one target: its idle connections, shared by every request
/// (cheap to clone).
#[derive(Clone)]
pub(crate) struct Sender {
    pool: Arc<Pool>,
}

struct Pool {
    target: Target,
    timeout: Duration,
    /// Last in, first out: the connection used most recently is the one most surely open.
    idle: Mutex<Vec<Connection>>,
}

impl Sender {
    pub fn new(target: Target, timeout: Duration) -> Self {
        Self {
            pool: Arc::new(Pool {
                target,
                timeout,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends the request now on an idle connection (a new one when none is idle) and waits
    /// for the whole response, at most until the deadline.
    pub async fn send(
        &self,
        template: usize,
        intended_at: Instant,
        request: Rendered,
    ) -> RequestRecord {
        let idle = self.idle().pop();
        let mut connection =
            idle.unwrap_or_else(|| Connection::new(self.pool.target.clone(), self.pool.timeout));
        let record = connection.send(template, intended_at, request).await;
        // A connection that failed is closed; kept anyway, it reconnects on its next use.
        self.idle().push(connection);
        record
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // Held for one push or pop, never across an await.
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One keep-alive HTTP/1.1 connection to one target, owned by whoever sends on it. It
/// connects on its first request and again after a failure or after the server closed it.
pub(crate) struct Connection {
    target: Target,
    timeout: Duration,
    stream: Option<TcpStream>,
    /// The request being sent, rendered into the same buffer every time.
    request: Vec<u8>,
    /// Read buffer (empty until the first answer).
    buffer: Vec<u8>,
    /// One timer for the connection instead of one per request: it is re-armed only when it
    /// fires early (see [`expired`]), so a request that is answered in time never touches it.
    timer: Pin<Box<Sleep>>,
}

/// A complete answer.
struct Answer {
    status: u16,
    /// The connection may carry the next request.
    reusable: bool,
    /// The request ID header's value, when asked for and present.
    echoed: Option<Vec<u8>>,
}

impl Connection {
    /// Does not connect yet: the first request does. Must be called inside the runtime.
    pub fn new(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            stream: None,
            request: Vec::new(),
            buffer: Vec::new(),
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
        let id = tag
            .as_deref()
            .map(|tag| (tag.header().as_str(), tag.value.as_bytes()));
        write_request(
            &mut self.request,
            &self.target.prefix,
            &self.target.host_line,
            &request,
            id,
        );
        let capture = id.map(|(name, _)| name.as_bytes());
        let Self {
            target,
            stream,
            request: bytes,
            buffer,
            timer,
            ..
        } = self;
        let answer = tokio::select! {
            biased;
            answer = exchange(target, stream, bytes, buffer, capture) => answer,
            () = expired(timer, deadline) => Err(ErrorKind::Timeout),
        };
        let (outcome, echo) = match answer {
            Ok(answer) => {
                if !answer.reusable {
                    self.stream = None;
                }
                let echo = tag
                    .as_deref()
                    .map_or(Echo::NoAnswer, |tag| tag.echo(answer.echoed.as_deref()));
                (Outcome::Status(answer.status), echo)
            }
            Err(kind) => {
                // Whatever was left half-sent or half-read on it, start the next request afresh.
                self.stream = None;
                (Outcome::Error(kind), Echo::NoAnswer)
            }
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
}

/// Connects if there is no usable connection, writes the request and reads the whole answer.
async fn exchange(
    target: &Target,
    stream: &mut Option<TcpStream>,
    request: &[u8],
    buffer: &mut Vec<u8>,
    capture: Option<&[u8]>,
) -> Result<Answer, ErrorKind> {
    if stream.as_ref().is_some_and(closed_by_server) {
        *stream = None;
    }
    let stream = match stream {
        Some(open) => open,
        // Boxed: connecting is rare, and its future would otherwise make every request's
        // future larger (and costlier to move) than the request itself needs.
        None => stream.insert(Box::pin(connect(target)).await?),
    };
    stream.write_all(request).await.map_err(|_| ErrorKind::Io)?;
    read_answer(stream, buffer, capture).await
}

async fn connect(target: &Target) -> Result<TcpStream, ErrorKind> {
    let stream = TcpStream::connect((target.host(), target.port()))
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Requests are small; do not let Nagle's algorithm add 40 ms to them.
    stream.set_nodelay(true).map_err(|_| ErrorKind::Connect)?;
    Ok(stream)
}

/// Whether the server has closed an idle connection (after its keep-alive timeout, or when it
/// answered and closed without saying `Connection: close`). Asks tokio what the reactor last
/// saw of the socket, without a system call: a closed read side stays seen once it was.
fn closed_by_server(stream: &TcpStream) -> bool {
    match stream.ready(Interest::READABLE).now_or_never() {
        Some(Ok(ready)) => ready.is_read_closed(),
        Some(Err(_)) => true,
        None => false,
    }
}

/// Reads until the answer is complete; bytes are parsed as they come and the body is counted,
/// not kept.
async fn read_answer(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    capture: Option<&[u8]>,
) -> Result<Answer, ErrorKind> {
    if buffer.is_empty() {
        buffer.resize(BUFFER, 0);
    }
    let mut reader = ResponseReader::new(capture);
    // The bytes not yet consumed are `buffer[start..end]`: an incomplete head.
    let (mut start, mut end) = (0, 0);
    loop {
        if end == buffer.len() {
            if start > 0 {
                buffer.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            } else if buffer.len() < MAX_BUFFER {
                buffer.resize(buffer.len() * 2, 0);
            } else {
                // A head larger than the buffer: no answer a client would take.
                return Err(ErrorKind::Io);
            }
        }
        let space = buffer.len() - end;
        let read = stream
            .read(&mut buffer[end..])
            .await
            .map_err(|_| ErrorKind::Io)?;
        if read == 0 {
            // The server closed: that ends an answer without a length, and breaks any other.
            if !reader.end_of_stream() {
                return Err(ErrorKind::Io);
            }
            return Ok(answer(&reader, false));
        }
        end += read;
        let step = reader
            .feed(&buffer[start..end])
            .map_err(|_| ErrorKind::Io)?;
        start += step.consumed;
        if step.done {
            // Bytes after the answer were not asked for: the connection is out of step.
            let clean = start == end;
            if clean && read < space {
                forget_readable(stream);
            }
            return Ok(answer(&reader, clean));
        }
        if start == end {
            (start, end) = (0, 0);
        }
        if read == space && buffer.len() < MAX_BUFFER {
            // A read that filled the buffer: a large body, read it in larger pieces.
            buffer.resize(buffer.len() * 2, 0);
        }
    }
}

fn answer(reader: &ResponseReader<'_>, clean: bool) -> Answer {
    Answer {
        status: reader.status(),
        reusable: clean && reader.reusable(),
        echoed: reader.captured().map(<[u8]>::to_vec),
    }
}

/// After an answer whose last read came back short, the socket had nothing more to read, and
/// the server sends nothing more before the next request. Tokio does not know that (it learns
/// it only from a read that fails with `WouldBlock`), so the next request's first read would be
/// a wasted system call; this tells it instead. A close is still seen: tokio keeps "read
/// closed" whatever is cleared, and data that arrives later raises readiness again.
fn forget_readable(stream: &TcpStream) {
    let _ = stream.try_io(Interest::READABLE, || {
        Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
    });
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

/// The plan's method as hyper's (the check's answers and the sessions' logins).
pub(crate) fn hyper_method(method: Method) -> hyper::Method {
    match method {
        Method::Get => hyper::Method::GET,
        Method::Post => hyper::Method::POST,
        Method::Put => hyper::Method::PUT,
        Method::Delete => hyper::Method::DELETE,
    }
}

#[cfg(test)]
mod tests;
