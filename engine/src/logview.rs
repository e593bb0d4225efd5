//! A service's log line as the lab shows it: JSON lines (one object per line, as
//! tracing-subscriber's `fmt().json()` writes them) parsed into time, level, message, target,
//! request ID and the other fields; text lines (tracing's default format, optionally after the
//! kit's `[instance N] ` tag) with their time and level when they have them. One parser for
//! `sdlab logs`, the API's logs endpoints and the check's request-ID line.
//!
//! Where tracing-subscriber 0.3 puts a field (verified with a real program; the fixtures in
//! the tests are its output): `.json()` nests the event's fields under `fields`
//! (`{"timestamp","level","fields":{"message",..},"target","span":{..},"spans":[..]}`),
//! `.flatten_event(true)` puts them at the top level, `span` is the innermost span's fields
//! and `spans` every entered span's, outermost first. A `request_id` recorded on a request
//! span therefore shows only in `spans` when an inner span is current.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// The field that holds a request's ID.
pub const REQUEST_ID: &str = "request_id";

/// One log line, parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogEntry {
    /// The line as written.
    pub raw: String,
    /// Whether the line is a JSON object.
    pub json: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The other fields of a JSON line, as text (strings unquoted): the event's own by name,
    /// the spans' as `span.<name>` (innermost wins). Empty for a text line.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// Parses one line of a service's log.
pub fn parse(line: &str) -> LogEntry {
    let body = strip_instance_tag(line);
    if body.starts_with('{') {
        if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body) {
            return parse_json(line, object);
        }
    }
    parse_text(line, body)
}

/// The line after the kit's `[instance N] ` tag, or the whole line.
fn strip_instance_tag(line: &str) -> &str {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("[instance ") {
        if let Some(end) = rest.find("] ") {
            if rest[..end].chars().all(|c| c.is_ascii_alphanumeric()) {
                return rest[end + 2..].trim_start();
            }
        }
    }
    trimmed
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_json(raw: &str, mut top: Map<String, Value>) -> LogEntry {
    let mut fields_obj = match top.remove("fields") {
        Some(Value::Object(f)) => f,
        Some(other) => {
            // Not tracing's shape: keep it as an ordinary field.
            top.insert("fields".into(), other);
            Map::new()
        }
        None => Map::new(),
    };
    let span = match top.remove("span") {
        Some(Value::Object(s)) => Some(s),
        _ => None,
    };
    let spans: Vec<Map<String, Value>> = match top.remove("spans") {
        Some(Value::Array(list)) => list
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut take = |names: &[&str]| {
        names.iter().find_map(|n| {
            top.remove(*n)
                .or_else(|| fields_obj.remove(*n))
                .map(|v| text(&v))
        })
    };
    let time = take(&["timestamp", "time", "ts"]);
    let level = take(&["level"]).map(|l| l.to_ascii_uppercase());
    let message = take(&["message", "msg"]);
    let target = take(&["target"]);
    let own_id = take(&[REQUEST_ID]);
    // Innermost span first: the current span, then the list from its end.
    let span_chain: Vec<&Map<String, Value>> = span.iter().chain(spans.iter().rev()).collect();
    let request_id = own_id.or_else(|| span_chain.iter().find_map(|s| s.get(REQUEST_ID).map(text)));
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for s in span_chain.iter().rev() {
        for (k, v) in s.iter() {
            if k != "name" && k != REQUEST_ID {
                fields.insert(format!("span.{k}"), text(v));
            }
        }
    }
    for (k, v) in top.iter().chain(fields_obj.iter()) {
        fields.insert(k.clone(), text(v));
    }
    LogEntry {
        raw: raw.to_owned(),
        json: true,
        time,
        level,
        message,
        target,
        request_id,
        fields,
    }
}

/// tracing's default text format: `2026-11-30T23:38:51.319144Z  INFO target: message k=v`,
/// possibly with spans (`request{request_id="x"}: target: message`).
fn parse_text(raw: &str, body: &str) -> LogEntry {
    let mut words = body.split_whitespace();
    let first = words.next().unwrap_or_default();
    let looks_like_time = first.len() >= 19
        && first.as_bytes().get(4) == Some(&b'-')
        && first.as_bytes().get(10) == Some(&b'T');
    let (time, level, rest) = if looks_like_time {
        let after_time = body[first.len()..].trim_start();
        let level_word = after_time.split_whitespace().next().unwrap_or_default();
        if is_level(level_word) {
            (
                Some(first.to_owned()),
                Some(level_word.to_owned()),
                after_time[level_word.len()..].trim_start(),
            )
        } else {
            (Some(first.to_owned()), None, after_time)
        }
    } else {
        (None, None, body)
    };
    LogEntry {
        raw: raw.to_owned(),
        json: false,
        time,
        level,
        message: (!rest.is_empty()).then(|| rest.to_owned()),
        target: None,
        request_id: text_request_id(rest),
        fields: BTreeMap::new(),
    }
}

fn is_level(word: &str) -> bool {
    matches!(word, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR")
}

/// `request_id=abc` or `request_id="abc"` in a text line, so the filter finds text lines too.
fn text_request_id(text: &str) -> Option<String> {
    let at = text.find("request_id=")?;
    let value = &text[at + "request_id=".len()..];
    let id: String = if let Some(quoted) = value.strip_prefix('"') {
        quoted.chars().take_while(|c| *c != '"').collect()
    } else {
        value
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '}' | ',' | ':'))
            .collect()
    };
    (!id.is_empty()).then_some(id)
}

impl LogEntry {
    /// Whether the line belongs to the request with this ID.
    pub fn is_request(&self, id: &str) -> bool {
        self.request_id.as_deref() == Some(id)
    }

    /// One readable line: `time LEVEL [request_id] message key=value ...` for JSON lines,
    /// the line itself for text.
    pub fn readable(&self) -> String {
        if !self.json {
            return self.raw.clone();
        }
        let mut out = Vec::new();
        if let Some(t) = &self.time {
            out.push(t.clone());
        }
        if let Some(l) = &self.level {
            out.push(format!("{l:>5}"));
        }
        if let Some(id) = &self.request_id {
            out.push(format!("[{id}]"));
        }
        if let Some(m) = &self.message {
            out.push(m.clone());
        }
        for (k, v) in &self.fields {
            if v.contains(char::is_whitespace) || v.is_empty() {
                out.push(format!("{k}={v:?}"));
            } else {
                out.push(format!("{k}={v}"));
            }
        }
        out.join(" ")
    }
}

/// How much of the end of a log file a plain tail reads.
pub const TAIL_BYTES: u64 = 512 * 1024;
/// How much of the end of a log file a tail filtered by request ID reads: a request's lines
/// may be far back in a busy log.
pub const FILTERED_TAIL_BYTES: u64 = 32 * 1024 * 1024;

/// The last `n` lines of the log file at `path` (those of request `request` only, when
/// given), oldest first; none when the file does not exist yet.
pub fn tail(
    path: &std::path::Path,
    n: usize,
    request: Option<&str>,
) -> std::io::Result<Vec<LogEntry>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let window = if request.is_some() {
        FILTERED_TAIL_BYTES
    } else {
        TAIL_BYTES
    };
    let start = len.saturating_sub(window);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut in the middle.
        lines.remove(0);
    }
    let mut entries = select(lines.into_iter(), request);
    let skip = entries.len().saturating_sub(n);
    Ok(entries.split_off(skip))
}

/// The lines of `lines` that belong to `request` (all when None), parsed. A cheap substring
/// test first: most lines of a busy log are not the request's and need no JSON parse.
pub fn select<'a>(lines: impl Iterator<Item = &'a str>, request: Option<&str>) -> Vec<LogEntry> {
    lines
        .filter(|l| request.is_none_or(|id| l.contains(id)))
        .map(parse)
        .filter(|e| request.is_none_or(|id| e.is_request(id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of tracing-subscriber 0.3.23 (`fmt().json()` with its defaults, which
    /// include the current span and the span list), from a small program: an event with a
    /// `request_id` field, then an event inside a `db` span inside a `request` span that holds
    /// the ID.
    const NESTED: [&str; 2] = [
        r#"{"timestamp":"2026-11-30T23:38:51.319144Z","level":"INFO","fields":{"message":"request finished","request_id":"top-1","route":"/orders/{id}","status":200},"target":"jsonfix"}"#,
        r#"{"timestamp":"2026-11-30T23:38:51.319427Z","level":"WARN","fields":{"message":"slow query","elapsed_ms":812},"target":"jsonfix","span":{"query":"select","name":"db"},"spans":[{"method":"GET","request_id":"span-7","route":"/orders/{id}","name":"request"},{"query":"select","name":"db"}]}"#,
    ];
    /// The same two events with `.flatten_event(true)`.
    const FLAT: [&str; 2] = [
        r#"{"timestamp":"2026-11-30T23:38:51.354233Z","level":"INFO","message":"request finished","request_id":"top-1","route":"/orders/{id}","status":200,"target":"jsonfix"}"#,
        r#"{"timestamp":"2026-11-30T23:38:51.354345Z","level":"WARN","message":"slow query","elapsed_ms":812,"target":"jsonfix","span":{"query":"select","name":"db"},"spans":[{"method":"GET","request_id":"span-7","route":"/orders/{id}","name":"request"},{"query":"select","name":"db"}]}"#,
    ];

    #[test]
    fn tracing_json_lines_give_their_fields_nested_or_flattened() {
        for lines in [NESTED, FLAT] {
            let finished = parse(lines[0]);
            assert!(finished.json);
            assert_eq!(finished.time.as_deref(), Some(&lines[0][14..41]));
            assert_eq!(finished.level.as_deref(), Some("INFO"));
            assert_eq!(finished.message.as_deref(), Some("request finished"));
            assert_eq!(finished.target.as_deref(), Some("jsonfix"));
            assert_eq!(finished.request_id.as_deref(), Some("top-1"));
            assert_eq!(finished.fields["route"], "/orders/{id}");
            assert_eq!(finished.fields["status"], "200");
            assert!(finished.is_request("top-1"));
        }
    }

    #[test]
    fn a_request_id_on_an_outer_span_is_found_in_the_span_list() {
        for line in [NESTED[1], FLAT[1]] {
            let slow = parse(line);
            assert_eq!(slow.request_id.as_deref(), Some("span-7"), "{line}");
            assert_eq!(slow.level.as_deref(), Some("WARN"));
            assert_eq!(slow.fields["elapsed_ms"], "812");
            assert_eq!(slow.fields["span.query"], "select");
            assert_eq!(slow.fields["span.method"], "GET");
            assert!(!slow.fields.contains_key("span.name"));
        }
    }

    #[test]
    fn the_kits_instance_tag_before_json_is_allowed() {
        let entry = parse(&format!("[instance 2] {}", FLAT[0]));
        assert!(entry.json);
        assert_eq!(entry.request_id.as_deref(), Some("top-1"));
        assert!(entry.raw.starts_with("[instance 2] {"));
    }

    #[test]
    fn a_numeric_request_id_is_compared_as_its_text() {
        let entry = parse(r#"{"level":"info","msg":"done","request_id":42}"#);
        assert_eq!(entry.request_id.as_deref(), Some("42"));
        assert_eq!(entry.level.as_deref(), Some("INFO"));
        assert_eq!(entry.message.as_deref(), Some("done"));
    }

    #[test]
    fn text_lines_keep_their_time_level_and_request_id() {
        let line = r#"[instance 1] 2026-11-30T23:38:51.319144Z  INFO request{request_id="abc-1"}: svc::app: order saved"#;
        let entry = parse(line);
        assert!(!entry.json);
        assert_eq!(entry.time.as_deref(), Some("2026-11-30T23:38:51.319144Z"));
        assert_eq!(entry.level.as_deref(), Some("INFO"));
        assert_eq!(entry.request_id.as_deref(), Some("abc-1"));
        assert_eq!(entry.readable(), line);
        let plain = parse("thread 'main' panicked at src/main.rs:3:5");
        assert_eq!(plain.time, None);
        assert_eq!(plain.request_id, None);
        assert_eq!(
            plain.message.as_deref(),
            Some("thread 'main' panicked at src/main.rs:3:5")
        );
    }

    #[test]
    fn broken_json_is_a_text_line() {
        let entry = parse(r#"{"level":"INFO","message":"cut in the mid"#);
        assert!(!entry.json);
        assert_eq!(entry.request_id, None);
        let array = parse(r#"["not", "an", "object"]"#);
        assert!(!array.json);
    }

    #[test]
    fn a_tail_filtered_by_request_keeps_only_that_requests_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service-1.log");
        assert!(tail(&path, 10, None).unwrap().is_empty(), "no file yet");
        let text = format!(
            "{}\n{}\n{}\nplain text sdlab-1\n",
            FLAT[0], FLAT[1], NESTED[0]
        );
        std::fs::write(&path, text).unwrap();
        let all = tail(&path, 10, None).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(tail(&path, 2, None).unwrap()[0].raw, NESTED[0]);
        let top: Vec<String> = tail(&path, 10, Some("top-1"))
            .unwrap()
            .into_iter()
            .map(|e| e.raw)
            .collect();
        assert_eq!(top, vec![FLAT[0].to_string(), NESTED[0].to_string()]);
        assert_eq!(tail(&path, 1, Some("top-1")).unwrap()[0].raw, NESTED[0]);
        assert_eq!(tail(&path, 10, Some("span-7")).unwrap().len(), 1);
        // Mentioning the ID is not carrying it.
        assert!(tail(&path, 10, Some("sdlab-1")).unwrap().is_empty());
    }

    #[test]
    fn a_json_line_reads_as_time_level_id_message_and_fields() {
        assert_eq!(
            parse(FLAT[0]).readable(),
            "2026-11-30T23:38:51.354233Z  INFO [top-1] request finished route=/orders/{id} status=200"
        );
    }
}
