//! The Redis console: one command line sent to the scenario's running Redis and its reply
//! rendered the way `redis-cli` prints it. Shared by `sdlab redis` (and, later, the web UI's
//! console beside the SQL one).
//!
//! Redis lives only as long as the lab that started it (a cache starts empty), so the
//! console reaches the server named in the scenario's run state, never starts one.

use redis_server_embedded::Reply;

/// What can go wrong before a reply arrives.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    Syntax(String),
    #[error(
        "{scenario} has no Redis running: Redis runs with the lab (sdlab start {scenario}) and starts empty"
    )]
    NotRunning { scenario: String },
    #[error(transparent)]
    Redis(#[from] redis_server_embedded::Error),
}

/// `127.0.0.1:PORT` of a `redis://127.0.0.1:PORT` URL.
pub fn port_of(url: &str) -> Option<u16> {
    url.strip_prefix("redis://")?
        .rsplit(':')
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// Sends `line` (e.g. `INFO stats`, `SET "a key" 1`) to the Redis on 127.0.0.1:`port` and
/// renders the reply.
pub async fn run(port: u16, line: &str) -> Result<String, ConsoleError> {
    let args = split(line)?;
    let reply = redis_server_embedded::command(port, &args).await?;
    Ok(render(&reply))
}

/// Splits a command line into arguments: whitespace separates, double or single quotes keep
/// spaces, `\"` and `\\` escape inside double quotes.
pub fn split(line: &str) -> Result<Vec<String>, ConsoleError> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('"'), '\\') => match chars.next() {
                Some(next) => current.push(next),
                None => return Err(ConsoleError::Syntax("a \\ at the end of the line".into())),
            },
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_arg = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ConsoleError::Syntax("a quote that is not closed".into()));
    }
    if in_arg {
        args.push(current);
    }
    if args.is_empty() {
        return Err(ConsoleError::Syntax(
            "no command: e.g. PING, INFO stats, GET key".into(),
        ));
    }
    Ok(args)
}

/// A reply as `redis-cli` prints it: `OK`, `(integer) 3`, `(nil)`, `"value"`, `(error) ...`,
/// arrays as numbered lines; a bulk string of several lines (INFO) as its text.
pub fn render(reply: &Reply) -> String {
    let mut out = String::new();
    render_into(reply, "", &mut out);
    out
}

fn render_into(reply: &Reply, indent: &str, out: &mut String) {
    match reply {
        Reply::Simple(s) => out.push_str(&format!("{s}\n")),
        Reply::Error(e) => out.push_str(&format!("(error) {e}\n")),
        Reply::Integer(i) => out.push_str(&format!("(integer) {i}\n")),
        Reply::Bulk(None) | Reply::Array(None) => out.push_str("(nil)\n"),
        Reply::Bulk(Some(bytes)) => {
            let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
            if text.contains('\n') {
                out.push_str(text.trim_end());
                out.push('\n');
            } else {
                out.push_str(&format!("{text:?}\n"));
            }
        }
        Reply::Array(Some(items)) if items.is_empty() => out.push_str("(empty array)\n"),
        Reply::Array(Some(items)) => {
            let width = items.len().to_string().len();
            for (i, item) in items.iter().enumerate() {
                let label = format!("{:>width$}) ", i + 1);
                if i > 0 {
                    out.push_str(indent);
                }
                out.push_str(&label);
                let deeper = format!("{indent}{}", " ".repeat(label.len()));
                render_into(item, &deeper, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_keep_spaces_and_escapes_work_inside_double_quotes() {
        assert_eq!(
            split(r#"SET "a key" 'b c' d\e "q\"x""#).unwrap(),
            ["SET", "a key", "b c", "d\\e", "q\"x"]
        );
        assert_eq!(split("  PING  ").unwrap(), ["PING"]);
        assert_eq!(split(r#"GET """#).unwrap(), ["GET", ""]);
        assert!(split("GET \"open").is_err());
        assert!(split("   ").is_err());
    }

    #[test]
    fn replies_render_like_redis_cli() {
        assert_eq!(render(&Reply::Simple("PONG".into())), "PONG\n");
        assert_eq!(render(&Reply::Integer(3)), "(integer) 3\n");
        assert_eq!(render(&Reply::Bulk(None)), "(nil)\n");
        assert_eq!(render(&Reply::Bulk(Some(b"v 1".to_vec()))), "\"v 1\"\n");
        assert_eq!(
            render(&Reply::Error("OOM command not allowed".into())),
            "(error) OOM command not allowed\n"
        );
        let nested = Reply::Array(Some(vec![
            Reply::Bulk(Some(b"a".to_vec())),
            Reply::Array(Some(vec![Reply::Integer(1), Reply::Integer(2)])),
        ]));
        assert_eq!(
            render(&nested),
            "1) \"a\"\n2) 1) (integer) 1\n   2) (integer) 2\n"
        );
        assert_eq!(
            render(&Reply::Bulk(Some(
                b"# Stats\r\nkeyspace_hits:3\r\n".to_vec()
            ))),
            "# Stats\nkeyspace_hits:3\n"
        );
    }

    #[test]
    fn the_port_comes_from_the_run_state_url() {
        assert_eq!(port_of("redis://127.0.0.1:6390"), Some(6390));
        assert_eq!(port_of("http://127.0.0.1:6390"), None);
    }
}
