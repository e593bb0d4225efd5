//! Just enough RESP (the Redis protocol) for the lab to talk to its server without a client
//! crate: a command out as an array of bulk strings, one reply in, and INFO's text as a map.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// One reply from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`.
    Simple(String),
    /// `-OOM command not allowed ...`: the whole line, error code first.
    Error(String),
    Integer(i64),
    /// `None` is RESP's null bulk string (`GET` of a missing key).
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The reply as text: simple strings, errors, integers and bulk strings (lossy UTF-8).
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) | Reply::Error(s) => Some(s.clone()),
            Reply::Integer(i) => Some(i.to_string()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Bulk(None) | Reply::Array(_) => None,
        }
    }
}

/// A command as RESP: an array of bulk strings, so any byte may appear in an argument.
pub(crate) fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

type ReplyFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Reply>> + Send + 'a>>;

/// Reads one reply (arrays recursively).
pub(crate) fn read_reply<R: AsyncBufRead + Unpin + Send>(reader: &mut R) -> ReplyFuture<'_> {
    Box::pin(async move {
        let line = read_line(reader).await?;
        let (kind, rest) = line.split_at(1.min(line.len()));
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => Ok(Reply::Integer(number(rest)?)),
            "$" => {
                let len = number(rest)?;
                let Ok(len) = usize::try_from(len) else {
                    return Ok(Reply::Bulk(None));
                };
                let mut data = vec![0; len + 2];
                reader.read_exact(&mut data).await?;
                data.truncate(len);
                Ok(Reply::Bulk(Some(data)))
            }
            "*" => {
                let len = number(rest)?;
                let Ok(len) = usize::try_from(len) else {
                    return Ok(Reply::Array(None));
                };
                let mut items = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    items.push(read_reply(reader).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a RESP reply: {line:?}"),
            )),
        }
    })
}

async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn number(text: &str) -> io::Result<i64> {
    text.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a RESP length: {text:?}"),
        )
    })
}

/// INFO's `key:value` lines as a map; `# Section` headers and blank lines are skipped.
/// Values stay text (`used_memory:1024`, `errorstat_OOM:count=3`).
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> io::Result<Reply> {
        let mut reader = tokio::io::BufReader::new(bytes);
        read_reply(&mut reader).await
    }

    #[test]
    fn a_command_is_an_array_of_bulk_strings() {
        assert_eq!(encode(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(encode(&["GET", "k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }

    #[tokio::test]
    async fn every_reply_kind_is_read() {
        assert_eq!(
            read(b"+PONG\r\n").await.unwrap(),
            Reply::Simple("PONG".into())
        );
        let oom = read(b"-OOM command not allowed\r\n").await.unwrap();
        assert!(oom.is_error() && oom.text().unwrap().starts_with("OOM "));
        assert_eq!(read(b":42\r\n").await.unwrap(), Reply::Integer(42));
        assert_eq!(
            read(b"$5\r\na\r\nbc\r\n").await.unwrap(),
            Reply::Bulk(Some(b"a\r\nbc".to_vec()))
        );
        assert_eq!(read(b"$-1\r\n").await.unwrap(), Reply::Bulk(None));
        assert_eq!(
            read(b"*2\r\n:1\r\n*1\r\n+x\r\n").await.unwrap(),
            Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Array(Some(vec![Reply::Simple("x".into())]))
            ]))
        );
    }

    #[tokio::test]
    async fn a_closed_connection_or_garbage_is_an_error() {
        assert!(read(b"").await.is_err());
        assert!(read(b"HTTP/1.1 200 OK\r\n").await.is_err());
        assert!(read(b"$3\r\nab").await.is_err(), "a short bulk string");
    }

    #[test]
    fn info_lines_become_a_map_without_section_headers() {
        let info = parse_info(
            "# Memory\r\nused_memory:1024\r\nmaxmemory_policy:noeviction\r\n\r\n# Errorstats\r\nerrorstat_OOM:count=3\r\n",
        );
        assert_eq!(info.get("used_memory").map(String::as_str), Some("1024"));
        assert_eq!(
            info.get("maxmemory_policy").map(String::as_str),
            Some("noeviction")
        );
        assert_eq!(
            info.get("errorstat_OOM").map(String::as_str),
            Some("count=3")
        );
        assert_eq!(info.len(), 3);
    }
}
