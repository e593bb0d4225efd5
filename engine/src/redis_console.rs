//! The Redis console: one command line sent to the scenario's running Redis and its reply
//! rendered the way `redis-cli` prints it. Shared by `sdlab redis` (full access, like
//! `sdlab sql` in a terminal) and the web UI's console beside the SQL one (read-only unless
//! the request asks for a write, like the API's SQL console).
//!
//! Redis lives only as long as the lab that started it (a cache starts empty), so the
//! console reaches the server named in the scenario's run state, never starts one.
//!
//! # The read-only rule (`refuse_in_read_only`, the one place it lives)
//! Redis has no read-only transaction to wrap a command in, so the console asks the server
//! itself: `COMMAND INFO <name> <name|sub>` before sending. Refused: a command Redis flags
//! `write`; one not flagged `readonly` whose key specs say it may write (`EVAL`, `FCALL`,
//! Redis 7); and the admin commands that change the server without touching a key
//! (`CONFIG SET`, `FLUSHALL`, `SHUTDOWN`, `CLIENT KILL`, ...: `CHANGES_SERVER`). Reads and
//! diagnosis (`GET`, `SCAN`, `INFO`, `SLOWLOG GET`, `CONFIG GET`, `MEMORY USAGE`, ...) pass.
//! Commands that stream (`MONITOR`, `SUBSCRIBE`, ...) are refused in every mode: the console
//! sends one command and shows one reply, so the refusal says how to run them in a terminal.
//! This guards against accidents; the API token is what keeps strangers out.

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
    /// Not sent: the read-only console does not run it, or it streams.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Redis(#[from] redis_server_embedded::Error),
}

/// What the console may do to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads and diagnosis only (the web UI's default).
    ReadOnly,
    /// Anything Redis accepts (`sdlab redis`, or a write asked for).
    ReadWrite,
}

/// Admin commands (name, subcommand or `None` for every form) that change the server, its
/// data or its clients without being flagged `write`, with what they do. Scripts are here
/// too: Redis 6 cannot say whether `EVAL` writes, and `EVAL_RO` is the read-only form.
const CHANGES_SERVER: &[(&str, Option<&str>, &str)] = &[
    ("config", Some("set"), "changes the server's settings"),
    (
        "config",
        Some("resetstat"),
        "resets the server's statistics",
    ),
    (
        "config",
        Some("rewrite"),
        "rewrites the server's config file",
    ),
    ("flushall", None, "deletes every key"),
    ("flushdb", None, "deletes every key of the database"),
    ("swapdb", None, "swaps two databases"),
    ("shutdown", None, "stops the server"),
    ("debug", None, "can crash, block or rewrite the server"),
    ("script", Some("flush"), "removes the cached scripts"),
    ("script", Some("kill"), "kills the running script"),
    ("function", Some("kill"), "kills the running function"),
    ("client", Some("kill"), "closes other clients' connections"),
    ("client", Some("pause"), "pauses every client"),
    ("failover", None, "hands the server's role to a replica"),
    ("replicaof", None, "makes the server a replica"),
    ("slaveof", None, "makes the server a replica"),
    (
        "save",
        None,
        "writes a snapshot to disk, blocking the server",
    ),
    ("bgsave", None, "writes a snapshot to disk"),
    ("bgrewriteaof", None, "rewrites the append-only file"),
    ("module", None, "loads or unloads server code"),
    ("acl", Some("setuser"), "changes users"),
    ("acl", Some("deluser"), "deletes users"),
    ("acl", Some("load"), "replaces the users"),
    ("acl", Some("save"), "writes the users to disk"),
    ("migrate", None, "moves keys to another server"),
    ("slowlog", Some("reset"), "erases the slow log"),
    ("latency", Some("reset"), "erases the latency history"),
    (
        "eval",
        None,
        "runs a script that may write (EVAL_RO runs one that only reads)",
    ),
    (
        "evalsha",
        None,
        "runs a script that may write (EVALSHA_RO runs one that only reads)",
    ),
    (
        "fcall",
        None,
        "runs a function that may write (FCALL_RO runs one that only reads)",
    ),
];

/// Commands that keep the connection and stream (name, what they send).
const STREAMS: &[(&str, &str)] = &[
    ("monitor", "every command the server receives"),
    ("subscribe", "the channels' messages"),
    ("psubscribe", "the matching channels' messages"),
    ("ssubscribe", "the shard channels' messages"),
    ("sync", "the replication stream"),
    ("psync", "the replication stream"),
];

/// The port of a `redis://127.0.0.1:PORT` URL.
pub fn port_of(url: &str) -> Option<u16> {
    crate::process::local_port(url, "redis")
}

/// Sends `line` (e.g. `INFO stats`, `SET "a key" 1`) to the Redis on 127.0.0.1:`port` and
/// renders the reply: full access, as `sdlab redis` gives it.
pub async fn run(port: u16, line: &str) -> Result<String, ConsoleError> {
    run_as(port, line, Access::ReadWrite).await
}

/// [`run`] with `access`: read-only refuses what `refuse_in_read_only` names, before
/// anything is sent. An error reply (`(error) ...`) is a rendered reply, not an `Err`.
pub async fn run_as(port: u16, line: &str, access: Access) -> Result<String, ConsoleError> {
    let args = split(line)?;
    if let Some(why) = refuse_streaming(port, &args) {
        return Err(ConsoleError::Refused(why));
    }
    if access == Access::ReadOnly {
        if let Some(why) = refuse_in_read_only(port, &args).await? {
            return Err(ConsoleError::Refused(why));
        }
    }
    let reply = redis_server_embedded::command(port, &args).await?;
    Ok(render(&reply))
}

/// Why a command that streams cannot run in the console, if `args` is one.
fn refuse_streaming(port: u16, args: &[String]) -> Option<String> {
    let name = args.first()?.to_ascii_lowercase();
    let (_, what) = STREAMS.iter().find(|(n, _)| *n == name)?;
    Some(format!(
        "`{}` streams {what} until it is stopped, and the console sends one command and shows one reply. Run it in a terminal: redis-cli -p {port} {}",
        args.join(" "),
        args.join(" ")
    ))
}

/// Why `args` may not run in the read-only console, if it may not: asks the Redis on
/// 127.0.0.1:`port` how it flags the command (see the module's doc).
pub async fn refuse_in_read_only(
    port: u16,
    args: &[String],
) -> Result<Option<String>, ConsoleError> {
    let Some(name) = args.first().map(|a| a.to_ascii_lowercase()) else {
        return Ok(None);
    };
    let sub = args.get(1).map(|a| a.to_ascii_lowercase());
    let refuse = |shown: String, why: &str| {
        Some(format!(
            "`{}` {why}, and the console is read-only. Send it as a write (\"write\": true; in the UI, tick \"allow writes\") to run it.",
            shown.to_ascii_uppercase()
        ))
    };
    if let Some((n, s, why)) = CHANGES_SERVER
        .iter()
        .find(|(n, s, _)| *n == name && (s.is_none() || s.as_deref() == sub.as_deref()))
    {
        let shown = s.map_or_else(|| n.to_string(), |s| format!("{n} {s}"));
        return Ok(refuse(shown, why));
    }
    // `name|sub` names a subcommand on Redis 7 (a container such as CONFIG or XGROUP has
    // no flags of its own); Redis 6 answers nil for it and flags the container instead.
    let mut query = vec!["COMMAND".to_string(), "INFO".to_string(), name.clone()];
    if let Some(sub) = &sub {
        query.push(format!("{name}|{sub}"));
    }
    let entries = match redis_server_embedded::command(port, &query).await? {
        Reply::Array(Some(entries)) => entries,
        other => {
            let answer = render(&other);
            return Ok(refuse(
                name,
                &format!(
                    "cannot be judged (COMMAND INFO answered {})",
                    answer.trim_end()
                ),
            ));
        }
    };
    let known = |i: usize| {
        entries
            .get(i)
            .filter(|e| matches!(e, Reply::Array(Some(_))))
    };
    // No entry: Redis does not know the command; sent as is, it answers with its error.
    Ok(match (known(1), known(0)) {
        (Some(entry), _) if writes(entry) => {
            let sub = sub.unwrap_or_default();
            refuse(
                format!("{name} {sub}"),
                "writes (so says the server's COMMAND INFO)",
            )
        }
        (None, Some(entry)) if writes(entry) => {
            refuse(name, "writes (so says the server's COMMAND INFO)")
        }
        _ => None,
    })
}

/// Whether a `COMMAND INFO` entry says the command may write: flagged `write`, or not
/// flagged `readonly` while a key spec (Redis 7) grants write access (`RW`, `OW`, `RM`).
fn writes(entry: &Reply) -> bool {
    let Reply::Array(Some(fields)) = entry else {
        return false;
    };
    let words = |r: Option<&Reply>| -> Vec<String> {
        match r {
            Some(Reply::Array(Some(items))) => items
                .iter()
                .filter_map(Reply::text)
                .map(|t| t.to_ascii_lowercase())
                .collect(),
            _ => Vec::new(),
        }
    };
    let flags = words(fields.get(2));
    if flags.iter().any(|f| f == "write") {
        return true;
    }
    if flags.iter().any(|f| f == "readonly") {
        return false;
    }
    // Key specs: each a flat map; its "flags" value lists RW/RO/OW/RM and access kinds.
    let Some(Reply::Array(Some(specs))) = fields.get(8) else {
        return false;
    };
    specs.iter().any(|spec| {
        let Reply::Array(Some(pairs)) = spec else {
            return false;
        };
        pairs.chunks(2).any(|pair| {
            pair.first().and_then(Reply::text).as_deref() == Some("flags")
                && words(pair.get(1))
                    .iter()
                    .any(|f| matches!(f.as_str(), "rw" | "ow" | "rm"))
        })
    })
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

    /// `line` in the read-only console of `redis`: the reply, or the refusal's text.
    async fn read_only(redis: &redis_server_embedded::Redis, line: &str) -> Result<String, String> {
        run_as(redis.port(), line, Access::ReadOnly)
            .await
            .map_err(|e| match e {
                ConsoleError::Refused(why) => why,
                other => panic!("{line}: not a refusal: {other}"),
            })
    }

    #[tokio::test]
    async fn the_read_only_console_runs_reads_and_diagnosis_and_refuses_what_changes_redis() {
        let dir = tempfile::tempdir().unwrap();
        let redis = redis_server_embedded::Redis::start(
            redis_server_embedded::RedisOptions::new(dir.path()).maxmemory(8 << 20),
        )
        .await
        .unwrap();
        assert_eq!(run(redis.port(), "SET k v").await.unwrap(), "OK\n");
        for line in [
            "GET k",
            "TTL k",
            "SCAN 0",
            "INFO stats",
            "SLOWLOG GET 5",
            "CONFIG GET maxmemory",
            "MEMORY USAGE k",
            "DBSIZE",
            "CLIENT LIST",
            "OBJECT ENCODING k",
            "PFCOUNT nothing",
            "EVAL_RO \"return 1\" 0",
            "NOSUCHCOMMAND x",
        ] {
            let reply = read_only(&redis, line).await;
            assert!(reply.is_ok(), "{line} should run read-only: {reply:?}");
        }
        assert_eq!(read_only(&redis, "get k").await.unwrap(), "\"v\"\n");
        assert_eq!(
            read_only(&redis, "CONFIG GET maxmemory").await.unwrap(),
            "1) \"maxmemory\"\n2) \"8388608\"\n"
        );
        assert!(read_only(&redis, "NOSUCHCOMMAND x")
            .await
            .unwrap()
            .starts_with("(error) ERR unknown command"));
        // Writes by Redis's own flags (no list of them here), subcommands included, and the
        // admin commands that change the server.
        for (line, named) in [
            ("SET k w", "`SET`"),
            ("del k", "`DEL`"),
            ("EXPIRE k 10", "`EXPIRE`"),
            ("XGROUP CREATE s g $ MKSTREAM", "`XGROUP CREATE`"),
            ("CONFIG SET maxmemory 1", "`CONFIG SET`"),
            ("config resetstat", "`CONFIG RESETSTAT`"),
            ("FLUSHALL", "`FLUSHALL`"),
            ("FLUSHDB", "`FLUSHDB`"),
            ("SHUTDOWN NOSAVE", "`SHUTDOWN`"),
            ("DEBUG SLEEP 0", "`DEBUG`"),
            ("SCRIPT FLUSH", "`SCRIPT FLUSH`"),
            ("CLIENT KILL ID 1", "`CLIENT KILL`"),
            ("CLIENT PAUSE 10", "`CLIENT PAUSE`"),
            ("REPLICAOF 127.0.0.1 1", "`REPLICAOF`"),
            ("BGSAVE", "`BGSAVE`"),
            ("SLOWLOG RESET", "`SLOWLOG RESET`"),
            ("EVAL \"return redis.call('del','k')\" 0", "`EVAL`"),
            ("ACL SETUSER x on", "`ACL SETUSER`"),
        ] {
            let why = read_only(&redis, line)
                .await
                .expect_err(&format!("{line} should be refused"));
            assert!(
                why.starts_with(named) && why.contains("\"write\": true"),
                "{line}: {why}"
            );
        }
        // Nothing of that reached the server: the key, the limit and the server are as they were.
        assert_eq!(run(redis.port(), "GET k").await.unwrap(), "\"v\"\n");
        assert!(run(redis.port(), "INFO memory")
            .await
            .unwrap()
            .contains("maxmemory:8388608"));
        // Asked as a write, the same commands run.
        assert_eq!(
            run_as(redis.port(), "SET k w", Access::ReadWrite)
                .await
                .unwrap(),
            "OK\n"
        );
        assert_eq!(
            run_as(redis.port(), "DEL k", Access::ReadWrite)
                .await
                .unwrap(),
            "(integer) 1\n"
        );
    }

    #[tokio::test]
    async fn commands_that_stream_are_refused_in_every_mode_with_the_terminal_way() {
        let dir = tempfile::tempdir().unwrap();
        let redis = redis_server_embedded::Redis::start(redis_server_embedded::RedisOptions::new(
            dir.path(),
        ))
        .await
        .unwrap();
        for line in ["MONITOR", "subscribe news", "PSUBSCRIBE n*"] {
            for access in [Access::ReadOnly, Access::ReadWrite] {
                match run_as(redis.port(), line, access).await {
                    Err(ConsoleError::Refused(why)) => assert!(
                        why.contains("streams")
                            && why.contains(&format!("redis-cli -p {} {line}", redis.port())),
                        "{why}"
                    ),
                    other => panic!("{line} ({access:?}) should be refused: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn the_port_comes_from_the_run_state_url() {
        assert_eq!(port_of("redis://127.0.0.1:6390"), Some(6390));
        assert_eq!(port_of("http://127.0.0.1:6390"), None);
    }
}
