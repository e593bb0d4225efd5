//! The reliability suite's tally. Nextest runs every test in its own process, so each case
//! appends its line to `target/reliability-summary.txt` (under a lock) and rewrites the last
//! line to the totals so far: `reliability: N cases tried, N survived, N lost`. Lines of an
//! earlier run (another `NEXTEST_RUN_ID`) are dropped. The engine's fuzz tests include this file
//! too (`#[path]`), so both test binaries add to one summary.

use std::io::Write;
use std::path::PathBuf;

/// One case of the suite; records itself when dropped (a panic marks its last try as failed).
pub struct Case {
    name: String,
    tried: u64,
    survived: u64,
    lost: u64,
}

impl Case {
    pub fn new(name: &str) -> Case {
        Case {
            name: name.to_string(),
            tried: 0,
            survived: 0,
            lost: 0,
        }
    }

    /// One try that ended well (the lab stayed usable, nothing lost).
    pub fn survived(&mut self) {
        self.tried += 1;
        self.survived += 1;
    }

    /// Versions of the learner's work that could not be found afterwards.
    #[allow(dead_code)] // Only the edit cycles can lose anything; the fuzz tests include this file too.
    pub fn lost(&mut self, n: u64) {
        self.lost += n;
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        let tried = self.tried + u64::from(failed);
        let verdict = if failed { "FAILED" } else { "survived" };
        let line = format!(
            "case {}: {verdict} ({tried} tried, {} survived, {} lost)",
            self.name, self.survived, self.lost
        );
        record(&line);
    }
}

fn summary_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/reliability-summary.txt")
}

fn record(line: &str) {
    let path = summary_path();
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(&path));
    let Ok(lock) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_extension("lock"))
    else {
        eprintln!("{line}");
        return;
    };
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor this function owns; released when `lock` is closed.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    let run = format!(
        "# run {}",
        std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| "outside nextest".to_string())
    );
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut cases: Vec<String> = if old.lines().next() == Some(run.as_str()) {
        old.lines()
            .filter(|l| l.starts_with("case "))
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    cases.push(line.to_string());
    let number = |l: &str, what: &str| -> u64 {
        l.split(['(', ',', ')'])
            .find_map(|part| {
                part.trim()
                    .strip_suffix(what)
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let tried: u64 = cases.iter().map(|l| number(l, "tried")).sum();
    let survived: u64 = cases.iter().map(|l| number(l, "survived")).sum();
    let lost: u64 = cases.iter().map(|l| number(l, "lost")).sum();
    let total = format!("reliability: {tried} cases tried, {survived} survived, {lost} lost");
    let text = format!("{run}\n{}\n{total}\n", cases.join("\n"));
    let tmp = path.with_extension("txt.tmp");
    if std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .is_ok()
    {
        let _ = std::fs::rename(&tmp, &path);
    }
    eprintln!("{line}\n{total}");
}
