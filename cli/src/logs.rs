//! `sdlab logs <id>`: the services' (and workers') logs from their files (so it works with the
//! lab stopped),
//! JSON lines shown readably (`time LEVEL [request_id] message key=value`), optionally only
//! one request's lines (`--request ID`) and following the files as they grow (`--follow`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use sdlab_engine::logview::{self, LogEntry};
use sdlab_engine::Lab;

/// What to show.
pub struct LogsArgs {
    pub id: String,
    pub instance: Option<u32>,
    pub lines: usize,
    pub request: Option<String>,
    pub follow: bool,
    pub raw: bool,
}

/// How often `--follow` looks for new lines.
const POLL: Duration = Duration::from_millis(500);

pub async fn logs(args: LogsArgs) -> Result<ExitCode> {
    let lab = Lab::from_env().context("load the scenario catalog")?;
    let scenario = lab.scenario(&args.id)?.clone();
    let dir = lab.home.logs_dir(&scenario);
    let files = log_files(&dir, args.instance)?;
    if files.is_empty() {
        eprintln!(
            "No logs of {} yet in {} (start it first: sdlab start {}).",
            scenario.id,
            dir.display(),
            scenario.id
        );
        return Ok(ExitCode::SUCCESS);
    }
    let request = args.request.as_deref().filter(|r| !r.trim().is_empty());
    let several = files.len() > 1;
    let mut tagged: Vec<(String, LogEntry)> = Vec::new();
    for (source, path) in &files {
        let entries = logview::tail(path, args.lines, request)
            .with_context(|| format!("read {}", path.display()))?;
        tagged.extend(entries.into_iter().map(|e| (source.clone(), e)));
    }
    if several {
        tagged = merge_by_time(tagged);
        let skip = tagged.len().saturating_sub(args.lines);
        tagged.drain(..skip);
    }
    for (source, entry) in &tagged {
        println!("{}", show(source, entry, several, args.raw));
    }
    if tagged.is_empty() && !args.follow {
        match request {
            Some(id) => eprintln!(
                "No line with request_id {id:?} in {} (only JSON lines with a request_id field are matched).",
                dir.display()
            ),
            None => eprintln!("The logs in {} are empty.", dir.display()),
        }
    }
    if args.follow {
        follow(&files, request, several, args.raw).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The log files to read, each with the source it is shown as: `service-<N>.log` in `dir`
/// ("instance N"; only instance `only` when given), by instance, then the workers'
/// `worker-<N>.log` ("worker N", `[topology.workers]`) when no instance is chosen.
fn log_files(dir: &Path, only: Option<u32>) -> Result<Vec<(String, PathBuf)>> {
    let mut files: Vec<((u8, u32), PathBuf)> = Vec::new();
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let numbered = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(".log"))
                .and_then(|n| n.parse::<u32>().ok())
        };
        // Instances first (rank 0), then workers, each by number.
        let (rank, n) = match (numbered("service-"), numbered("worker-")) {
            (Some(n), _) if only.is_none_or(|o| o == n) => (0, n),
            (None, Some(n)) if only.is_none() => (1, n),
            _ => continue,
        };
        files.push(((rank, n), entry.path()));
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|((rank, n), path)| {
            let kind = if rank == 0 { "instance" } else { "worker" };
            (format!("{kind} {n}"), path)
        })
        .collect())
}

/// The instances' lines in time order: each line without a time of its own (a text line,
/// a panic message) keeps the time of the line before it in its file, so it stays with it.
fn merge_by_time(tagged: Vec<(String, LogEntry)>) -> Vec<(String, LogEntry)> {
    let mut last: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut keyed: Vec<(String, (String, LogEntry))> = tagged
        .into_iter()
        .map(|(source, entry)| {
            let key = match &entry.time {
                Some(t) => {
                    last.insert(source.clone(), t.clone());
                    t.clone()
                }
                None => last.get(&source).cloned().unwrap_or_default(),
            };
            (key, (source, entry))
        })
        .collect();
    // Stable: lines of one instance with the same time keep their order.
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.into_iter().map(|(_, t)| t).collect()
}

fn show(source: &str, entry: &LogEntry, several: bool, raw: bool) -> String {
    let text = if raw {
        entry.raw.clone()
    } else {
        entry.readable()
    };
    // The kit's text lines name their instance (or worker) already.
    if several && !entry.raw.trim_start().starts_with("[instance ") {
        format!("[{source}] {text}")
    } else {
        text
    }
}

/// Prints the lines appended to the files from now on, until Ctrl-C. A file that shrinks was
/// started afresh (a restart) and is read again from its start.
async fn follow(
    files: &[(String, PathBuf)],
    request: Option<&str>,
    several: bool,
    raw: bool,
) -> Result<()> {
    let mut offsets: Vec<u64> = files
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    let mut partial: Vec<String> = vec![String::new(); files.len()];
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
        for (i, (source, path)) in files.iter().enumerate() {
            let len = std::fs::metadata(path).map_or(0, |m| m.len());
            if len < offsets[i] {
                offsets[i] = 0;
                partial[i].clear();
            }
            if len == offsets[i] {
                continue;
            }
            let bytes =
                read_from(path, offsets[i]).with_context(|| format!("read {}", path.display()))?;
            offsets[i] += bytes.len() as u64;
            partial[i].push_str(&String::from_utf8_lossy(&bytes));
            let Some(end) = partial[i].rfind('\n') else {
                continue;
            };
            for entry in logview::select(partial[i][..end].lines(), request) {
                println!("{}", show(source, &entry, several, raw));
            }
            partial[i].drain(..=end);
        }
    }
}

fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(logview::TAIL_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> LogEntry {
        logview::parse(line)
    }

    #[test]
    fn instances_merge_in_time_order_with_untimed_lines_kept_after_theirs() {
        let a = entry(r#"{"timestamp":"2026-01-01T00:00:01Z","level":"INFO","message":"a1"}"#);
        let panic = entry("thread 'tokio' panicked at src/main.rs:3:5");
        let b = entry(r#"{"timestamp":"2026-01-01T00:00:02Z","level":"INFO","message":"b2"}"#);
        let a3 = entry(r#"{"timestamp":"2026-01-01T00:00:03Z","level":"INFO","message":"a3"}"#);
        let merged = merge_by_time(vec![
            ("instance 1".to_string(), a.clone()),
            ("instance 1".to_string(), panic.clone()),
            ("instance 1".to_string(), a3.clone()),
            ("worker 2".to_string(), b.clone()),
        ]);
        let order: Vec<String> = merged.iter().map(|(_, e)| e.raw.clone()).collect();
        assert_eq!(order, vec![a.raw, panic.raw, b.raw, a3.raw]);
        assert_eq!(
            show("worker 2", &merged[2].1, true, false),
            "[worker 2] 2026-01-01T00:00:02Z  INFO b2"
        );
    }

    #[test]
    fn service_log_files_are_read_by_instance_then_the_workers() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "worker-1.log",
            "service-10.log",
            "service-2.log",
            "service-1.log",
            "nginx.log",
            "service-x.log",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let sources = |only| -> Vec<String> {
            log_files(dir.path(), only)
                .unwrap()
                .into_iter()
                .map(|(source, _)| source)
                .collect()
        };
        assert_eq!(
            sources(None),
            vec!["instance 1", "instance 2", "instance 10", "worker 1"]
        );
        assert_eq!(sources(Some(2)), vec!["instance 2"], "an instance alone");
        assert!(log_files(&dir.path().join("none"), None)
            .unwrap()
            .is_empty());
    }
}
