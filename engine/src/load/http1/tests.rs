//! The response reader against hand-written answers and generated ones, fed whole, split at
//! every byte boundary and byte by byte; the request writer against the exact bytes.

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::*;

/// What reading an answer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Read {
    status: u16,
    done: bool,
    reusable: bool,
    /// Bytes that belonged to the answer.
    consumed: usize,
    captured: Option<Vec<u8>>,
}

/// Feeds `pieces` one after another the way the sender does (unconsumed bytes are given
/// again with the next piece), then the end of the stream if `closes` and not yet done.
fn read_pieces<'p>(
    pieces: impl IntoIterator<Item = &'p [u8]>,
    closes: bool,
) -> Result<Read, Malformed> {
    let mut reader = ResponseReader::new(Some(b"x-request-id"));
    let (mut pending, mut consumed) = (Vec::new(), 0);
    for piece in pieces {
        pending.extend_from_slice(piece);
        let step = reader.feed(&pending)?;
        consumed += step.consumed;
        pending.drain(..step.consumed);
        if step.done {
            break;
        }
    }
    let done = reader.done || (closes && reader.end_of_stream());
    Ok(Read {
        status: reader.status(),
        done,
        reusable: reader.reusable(),
        consumed,
        captured: reader.captured().map(<[u8]>::to_vec),
    })
}

fn read(answer: &[u8]) -> Result<Read, Malformed> {
    read_pieces([answer], false)
}

/// The answer fed in two pieces cut at `cut`.
fn read_cut(answer: &[u8], cut: usize, closes: bool) -> Result<Read, Malformed> {
    read_pieces([&answer[..cut], &answer[cut..]], closes)
}

#[test]
fn a_content_length_answer_ends_after_its_body_and_keeps_the_connection() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-request-id: abc\r\n\r\nhelloHTTP/1.1";
    let got = read(answer).unwrap();
    assert_eq!(got.status, 200);
    assert!(got.done && got.reusable);
    assert_eq!(
        got.consumed,
        answer.len() - b"HTTP/1.1".len(),
        "not the next bytes"
    );
    assert_eq!(got.captured.as_deref(), Some(&b"abc"[..]));
}

#[test]
fn a_chunked_answer_with_extensions_and_trailers_ends_after_the_empty_line() {
    let answer = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
        5;name=value\r\nhello\r\n1A \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n";
    let got = read(answer).unwrap();
    assert_eq!((got.status, got.done, got.reusable), (201, true, true));
    assert_eq!(got.consumed, answer.len());
    assert_eq!(got.captured, None);
    // One byte short of the final LF: not done yet.
    let short = read(&answer[..answer.len() - 1]).unwrap();
    assert!(!short.done);
}

#[test]
fn connection_close_and_http_1_0_decide_reuse() {
    let close = read(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert!(close.done && !close.reusable);
    let old = read(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
    assert!(old.done && !old.reusable);
    let kept = read(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok");
    assert!(kept.unwrap().reusable);
}

#[test]
fn an_answer_without_a_length_ends_with_the_connection_and_no_sooner() {
    let answer = b"HTTP/1.1 200 OK\r\n\r\nthe rest of the stream";
    let open = read(answer).unwrap();
    assert!(!open.done);
    let closed = read_pieces([&answer[..]], true).unwrap();
    assert!(closed.done && !closed.reusable);
    assert_eq!(closed.consumed, answer.len());
    let other_coding = read_pieces(
        [&b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nzz"[..]],
        true,
    );
    assert!(other_coding.unwrap().done);
}

#[test]
fn a_body_cut_short_by_the_close_is_not_an_answer() {
    let cut = read_pieces(
        [&b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"[..]],
        true,
    );
    assert!(!cut.unwrap().done);
    let chunk = read_pieces(
        [&b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel"[..]],
        true,
    );
    assert!(!chunk.unwrap().done);
    let head = read_pieces([&b"HTTP/1.1 200 OK\r\ncontent-len"[..]], true);
    assert!(!head.unwrap().done);
}

#[test]
fn informational_heads_are_skipped_and_no_content_answers_have_no_body() {
    let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
        HTTP/1.1 204 No Content\r\ncontent-length: 7\r\n\r\n";
    let got = read(answer).unwrap();
    assert_eq!((got.status, got.done, got.reusable), (204, true, true));
    assert_eq!(got.consumed, answer.len());
    let not_modified = read(b"HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n");
    assert!(not_modified.unwrap().done);
}

#[test]
fn malformed_answers_are_errors() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabX\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;a\nb\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
    ] {
        assert!(read(answer).is_err(), "{}", String::from_utf8_lossy(answer));
    }
    // Equal duplicates are one length.
    let same = read(b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\ncontent-length: 2\r\n\r\nok");
    assert!(same.unwrap().done);
}

#[test]
fn a_large_chunked_body_fed_in_socket_sized_pieces_is_counted_not_kept() {
    let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for i in 0..300u32 {
        let data = vec![b'a' + (i % 26) as u8; 1000 + i as usize * 7];
        answer.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        answer.extend_from_slice(&data);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    let got = read_pieces(answer.chunks(4096), false).unwrap();
    assert!(got.done && got.reusable);
    assert_eq!(got.consumed, answer.len());
}

#[test]
fn a_request_is_written_with_its_host_headers_and_body() {
    let tag_value = b"sdlab-1-7";
    let mut out = Vec::new();
    let get = Rendered {
        method: Method::Get,
        path: "/items/3?x=1".into(),
        body: None,
        auth: Some("tok".into()),
        request_id: None,
        headers: vec![("idempotency-key".into(), "order-7".into())],
    };
    let host = b"host: 127.0.0.1:8080\r\n";
    write_request(
        &mut out,
        "/api",
        host,
        &get,
        Some(("x-request-id", tag_value)),
    );
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "GET /api/items/3?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nauthorization: Bearer tok\r\n\
         x-request-id: sdlab-1-7\r\nidempotency-key: order-7\r\n\r\n"
    );
    let post = Rendered {
        method: Method::Post,
        path: "/items".into(),
        body: Some("{\"a\":1}".into()),
        auth: None,
        request_id: None,
        headers: Vec::new(),
    };
    write_request(&mut out, "", host, &post, None);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "POST /items HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-type: application/json\r\n\
         content-length: 7\r\n\r\n{\"a\":1}"
    );
    let put = Rendered {
        method: Method::Put,
        body: None,
        ..post
    };
    write_request(&mut out, "", host, &put, None);
    assert!(String::from_utf8(out)
        .unwrap()
        .ends_with("content-length: 0\r\n\r\n"));
}

/// How a generated answer frames its body.
#[derive(Debug, Clone)]
enum Framing {
    Length,
    /// Chunk sizes (the body is cut into them), with or without extensions and a trailer.
    Chunked {
        cuts: Vec<usize>,
        extensions: bool,
        trailer: bool,
    },
    UntilClose,
}

/// A generated answer and what reading it must give.
#[derive(Debug, Clone)]
struct Generated {
    bytes: Vec<u8>,
    expected: Read,
    closes: bool,
}

fn token() -> impl Strategy<Value = String> {
    let chars: Vec<char> = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789"
        .chars()
        .collect();
    prop::collection::vec(prop::sample::select(chars), 1..12).prop_map(|c| c.into_iter().collect())
}

fn value() -> impl Strategy<Value = String> {
    let chars: Vec<char> = (' '..='~').collect();
    prop::collection::vec(prop::sample::select(chars), 0..16)
        .prop_map(|c| c.into_iter().collect::<String>().trim().to_owned())
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Length),
        (
            prop::collection::vec(1usize..40, 0..6),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(cuts, extensions, trailer)| Framing::Chunked {
                cuts,
                extensions,
                trailer
            }),
        Just(Framing::UntilClose),
    ]
}

prop_compose! {
    fn generated()(
        http11 in any::<bool>(),
        status in prop::sample::select(vec![200u16, 201, 204, 301, 304, 404, 500, 503]),
        connection in prop::sample::select(vec!["", "close", "keep-alive", "Keep-Alive, x"]),
        continue_first in any::<bool>(),
        headers in prop::collection::vec((token(), value()), 0..5),
        framing in framing(),
        body in prop::collection::vec(any::<u8>(), 0..120),
        id in prop::option::of(value()),
    ) -> Generated {
        let no_body = status == 204 || status == 304;
        let mut bytes = Vec::new();
        if continue_first {
            bytes.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let version = if http11 { "HTTP/1.1" } else { "HTTP/1.0" };
        bytes.extend_from_slice(format!("{version} {status} Whatever\r\n").as_bytes());
        for (name, value) in &headers {
            let framing_name = ["content-length", "transfer-encoding", "connection", "x-request-id"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n));
            if !framing_name {
                bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
        }
        if let Some(id) = &id {
            bytes.extend_from_slice(format!("X-Request-ID: {id}\r\n").as_bytes());
        }
        if !connection.is_empty() {
            bytes.extend_from_slice(format!("Connection: {connection}\r\n").as_bytes());
        }
        let body = if no_body { Vec::new() } else { body };
        match &framing {
            // A 204 or 304 has no body, whatever its headers say.
            _ if no_body => {
                bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            }
            Framing::Length => {
                bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                bytes.extend_from_slice(&body);
            }
            Framing::Chunked { cuts, extensions, trailer } => {
                bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut sizes = cuts.iter().copied().chain(std::iter::repeat(50));
                while !rest.is_empty() {
                    let size = sizes.next().unwrap_or(50).min(rest.len());
                    let ext = if *extensions { ";a=\"b c\"" } else { "" };
                    bytes.extend_from_slice(format!("{size:X}{ext}\r\n").as_bytes());
                    bytes.extend_from_slice(&rest[..size]);
                    bytes.extend_from_slice(b"\r\n");
                    rest = &rest[size..];
                }
                bytes.extend_from_slice(b"0\r\n");
                if *trailer {
                    bytes.extend_from_slice(b"Expires: never\r\n");
                }
                bytes.extend_from_slice(b"\r\n");
            }
            Framing::UntilClose => {
                bytes.extend_from_slice(b"\r\n");
                bytes.extend_from_slice(&body);
            }
        }
        let until_close = matches!(framing, Framing::UntilClose) && !no_body;
        let keep = if http11 { connection != "close" } else { connection.to_ascii_lowercase().starts_with("keep-alive") };
        let expected = Read {
            status,
            done: true,
            reusable: keep && !until_close,
            consumed: bytes.len(),
            captured: id.map(String::into_bytes),
        };
        Generated { bytes, expected, closes: until_close }
    }
}

fn config(cases: u32) -> Config {
    // No regression files in the source tree; a failure prints its minimal input instead.
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn a_generated_answer_reads_the_same_however_the_reads_cut_it(answer in generated()) {
        let Generated { mut bytes, expected, closes } = answer;
        prop_assert_eq!(read_pieces([&bytes[..]], closes).unwrap(), expected.clone());
        for cut in 0..=bytes.len() {
            prop_assert_eq!(read_cut(&bytes, cut, closes).unwrap(), expected.clone(), "cut at {}", cut);
        }
        prop_assert_eq!(read_pieces(bytes.chunks(1), closes).unwrap(), expected.clone());
        if !closes {
            // The next answer's first bytes are never taken for this one's.
            bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            prop_assert_eq!(read_pieces(bytes.chunks(7), false).unwrap(), expected);
        }
    }

    #[test]
    fn any_bytes_give_an_answer_an_error_or_a_wait_and_never_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(bytes.len() + 1);
        if let Ok(got) = read_cut(&bytes, cut, true) {
            prop_assert!(got.consumed <= bytes.len());
        }
    }

    #[test]
    fn a_valid_head_with_mangled_bytes_never_panics(
        answer in generated(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = answer.bytes;
        let at = at.index(bytes.len());
        bytes[at] = byte;
        if let Ok(got) = read_pieces(bytes.chunks(3), true) {
            prop_assert!(got.consumed <= bytes.len());
        }
    }
}
