//! HTTP/1.1 on the wire, without I/O: the request bytes the load generator writes, and a
//! reader that finds where an answer ends and whether its connection can carry another.
//!
//! The reader is fed whatever a socket read returned, in as many pieces as the network cut it
//! into, and keeps only the state it needs between pieces (the head is parsed by `httparse`
//! once it is complete; the body is counted, never kept). It frames an answer the way RFC 9112
//! section 6.3 says: no body for 1xx/204/304, else `Transfer-Encoding` ending in `chunked`,
//! else any other `Transfer-Encoding` or no length at all read until the server closes, else
//! `Content-Length`. Connection reuse: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only
//! with `Connection: keep-alive`, never after a body that ends with the connection.

use super::params::Rendered;
use super::plan::Method;

/// Why an answer could not be read. The sender counts any of them as a broken connection
/// (`ErrorKind::Io`), as a client that cannot make sense of an answer has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// The status line or a header is not HTTP/1.x (httparse's words).
    Head(&'static str),
    /// Two `Content-Length` values that differ, or one that is not a number.
    Length,
    /// A chunk size line or the CRLF after a chunk is wrong.
    Chunk,
}

/// Headers read from one answer at most; more is malformed (hyper's default is 100).
const MAX_HEADERS: usize = 100;

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// This many bytes still to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the server closes the connection.
    UntilClose,
}

/// Where a chunked body is, byte by byte (only the chunk data is skipped in bulk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In the hex size; `digits` read so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size: whitespace or a `;extension`, up to the CR.
    Extension {
        size: u64,
    },
    /// The LF of the size line.
    SizeLf {
        size: u64,
    },
    /// Inside a chunk's data.
    Data {
        left: u64,
    },
    /// The CR, then the LF after a chunk's data.
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the empty line that ends the body.
    TrailerStart,
    /// Inside a trailer line, up to its LF.
    Trailer,
    /// The LF of the empty line that ends the body.
    EndLf,
}

/// What one call to [`ResponseReader::feed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// Bytes of the input that belong to this answer; the caller drops them. Fewer than were
    /// given while the head is incomplete (they are needed again, with more after them) or
    /// once the answer is complete (the rest is not this answer's).
    pub consumed: usize,
    /// The whole answer has been read.
    pub done: bool,
}

/// Reads one answer. [`ResponseReader::status`] and the captured header are known once the
/// head is in; [`ResponseReader::reusable`] once it is done.
#[derive(Debug)]
pub(crate) struct ResponseReader<'a> {
    /// `None` while the head is incomplete.
    body: Option<Body>,
    done: bool,
    status: u16,
    keep_alive: bool,
    /// The header whose value the caller wants (lower case), and its value once seen.
    capture: Option<&'a [u8]>,
    captured: Option<Vec<u8>>,
}

impl<'a> ResponseReader<'a> {
    /// A reader for the next answer; `capture` names a header (lower case) whose first value
    /// [`ResponseReader::captured`] returns.
    pub fn new(capture: Option<&'a [u8]>) -> Self {
        Self {
            body: None,
            done: false,
            status: 0,
            keep_alive: false,
            capture,
            captured: None,
        }
    }

    /// The answer's status (0 until the head is read).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The value of the captured header, if the answer had it.
    pub fn captured(&self) -> Option<&[u8]> {
        self.captured.as_deref()
    }

    /// The answer is complete and the connection may carry the next request.
    pub fn reusable(&self) -> bool {
        self.done && self.keep_alive
    }

    /// Takes the next bytes of the connection: `input` starts with the first byte not yet
    /// consumed, and while the head is incomplete it must be all of the head read so far.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, Malformed> {
        let mut consumed = 0;
        while !self.done {
            let rest = &input[consumed..];
            let step = match self.body {
                None => self.head(rest)?,
                Some(body) => {
                    let (step, next) = body_step(body, rest)?;
                    self.body = Some(next);
                    self.done = step.done;
                    step
                }
            };
            consumed += step.consumed;
            if step.consumed == 0 && !step.done {
                break;
            }
        }
        Ok(Step {
            consumed,
            done: self.done,
        })
    }

    /// The connection ended (a read returned nothing). Returns whether that completes the
    /// answer: only a body that runs until the close, or an answer already complete.
    pub fn end_of_stream(&mut self) -> bool {
        if self.body == Some(Body::UntilClose) {
            self.done = true;
            self.keep_alive = false;
        }
        self.done
    }

    /// Parses the head if it is all in `input`; an informational (1xx) head is skipped and
    /// the next one is expected.
    fn head(&mut self, input: &[u8]) -> Result<Step, Malformed> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(input) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return Ok(Step {
                    consumed: 0,
                    done: false,
                })
            }
            Err(e) => return Err(Malformed::Head(error_text(e))),
        };
        let status = response.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            return Ok(Step {
                consumed: len,
                done: false,
            });
        }
        let mut length: Option<u64> = None;
        let mut encoding: Option<&[u8]> = None;
        let (mut close, mut keep) = (false, false);
        for header in response.headers.iter() {
            let name = header.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                for value in header.value.split(|&b| b == b',') {
                    let n = parse_length(trim(value)).ok_or(Malformed::Length)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(Malformed::Length);
                    }
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // The last coding of the last header is the one that frames the body.
                encoding = header.value.rsplit(|&b| b == b',').next().map(trim);
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in header.value.split(|&b| b == b',').map(trim) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            if self.captured.is_none() && self.capture.is_some_and(|c| name.eq_ignore_ascii_case(c))
            {
                self.captured = Some(header.value.to_vec());
            }
        }
        let http11 = response.version == Some(1);
        self.status = status;
        self.keep_alive = !close && (http11 || keep) && status != 101;
        let body = if status == 204 || status == 304 || status == 101 {
            Body::Length(0)
        } else if let Some(coding) = encoding {
            if coding.eq_ignore_ascii_case(b"chunked") {
                Body::Chunked(Chunk::Size { size: 0, digits: 0 })
            } else {
                Body::UntilClose
            }
        } else {
            length.map_or(Body::UntilClose, Body::Length)
        };
        if body == Body::UntilClose {
            self.keep_alive = false;
        }
        self.body = Some(body);
        self.done = body == Body::Length(0);
        Ok(Step {
            consumed: len,
            done: self.done,
        })
    }
}

/// Consumes what it can of `input` for a body in state `body`; returns the step and the state
/// after it.
fn body_step(body: Body, input: &[u8]) -> Result<(Step, Body), Malformed> {
    Ok(match body {
        Body::Length(left) => {
            let take = left.min(input.len() as u64);
            let left = left - take;
            let step = Step {
                consumed: take as usize,
                done: left == 0,
            };
            (step, Body::Length(left))
        }
        Body::UntilClose => {
            let step = Step {
                consumed: input.len(),
                done: false,
            };
            (step, Body::UntilClose)
        }
        Body::Chunked(chunk) => {
            let (consumed, chunk) = chunked(chunk, input)?;
            let done = chunk.is_none();
            let chunk = chunk.unwrap_or(Chunk::Size { size: 0, digits: 0 });
            (Step { consumed, done }, Body::Chunked(chunk))
        }
    })
}

/// Runs the chunked decoder over `input`: the bytes consumed, and the state after them
/// (`None`: the body ended, after the consumed bytes).
fn chunked(mut state: Chunk, input: &[u8]) -> Result<(usize, Option<Chunk>), Malformed> {
    let mut at = 0;
    while at < input.len() {
        if let Chunk::Data { left } = state {
            let take = left.min((input.len() - at) as u64);
            at += take as usize;
            state = if take == left {
                Chunk::DataCr
            } else {
                Chunk::Data { left: left - take }
            };
            continue;
        }
        let byte = input[at];
        at += 1;
        match chunk_byte(state, byte)? {
            Some(next) => state = next,
            None => return Ok((at, None)),
        }
    }
    Ok((at, Some(state)))
}

/// The state after one byte outside chunk data (`None`: that byte ended the body).
fn chunk_byte(state: Chunk, byte: u8) -> Result<Option<Chunk>, Malformed> {
    let next = match state {
        Chunk::Size { size, digits } => match hex(byte) {
            // 15 digits: a size below 2^60 never overflows the shift.
            Some(d) if digits < 15 => Chunk::Size {
                size: size << 4 | u64::from(d),
                digits: digits + 1,
            },
            None if digits > 0 && matches!(byte, b';' | b' ' | b'\t') => Chunk::Extension { size },
            None if digits > 0 && byte == b'\r' => Chunk::SizeLf { size },
            _ => return Err(Malformed::Chunk),
        },
        Chunk::Extension { size } => match byte {
            b'\r' => Chunk::SizeLf { size },
            b'\n' => return Err(Malformed::Chunk),
            _ => Chunk::Extension { size },
        },
        Chunk::SizeLf { size } => match byte {
            b'\n' if size == 0 => Chunk::TrailerStart,
            b'\n' => Chunk::Data { left: size },
            _ => return Err(Malformed::Chunk),
        },
        Chunk::DataCr if byte == b'\r' => Chunk::DataLf,
        Chunk::DataLf if byte == b'\n' => Chunk::Size { size: 0, digits: 0 },
        Chunk::TrailerStart if byte == b'\r' => Chunk::EndLf,
        Chunk::TrailerStart | Chunk::Trailer if byte == b'\n' => Chunk::TrailerStart,
        Chunk::TrailerStart | Chunk::Trailer => Chunk::Trailer,
        Chunk::EndLf if byte == b'\n' => return Ok(None),
        // Data is skipped in bulk by the caller, never byte by byte.
        Chunk::DataCr | Chunk::DataLf | Chunk::EndLf | Chunk::Data { .. } => {
            return Err(Malformed::Chunk)
        }
    };
    Ok(Some(next))
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A `Content-Length` value: digits only (no sign, no spaces inside), at most 19 of them.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

fn error_text(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid new line",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

impl Method {
    /// The method as it is written on the request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// Writes `request` as HTTP/1.1 bytes into `out` (cleared first): the request line with the
/// target's path `prefix`, then `fixed` (the `Host` line, rendered once per target), the
/// optional headers, and the body. A POST or PUT without a body says `Content-Length: 0`, as
/// hyper did, since some servers refuse a body-less one without it.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    prefix: &str,
    fixed: &[u8],
    request: &Rendered,
    id: Option<(&str, &[u8])>,
) {
    out.clear();
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(request.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    out.extend_from_slice(fixed);
    if let Some(token) = &request.auth {
        out.extend_from_slice(b"authorization: Bearer ");
        out.extend_from_slice(token.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some((name, value)) = id {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &request.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body = request.body.as_deref().map(str::as_bytes);
    match body {
        Some(body) => {
            out.extend_from_slice(b"content-type: application/json\r\n");
            content_length(out, body.len());
        }
        None if matches!(request.method, Method::Post | Method::Put) => content_length(out, 0),
        None => {}
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
}

fn content_length(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(len.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
