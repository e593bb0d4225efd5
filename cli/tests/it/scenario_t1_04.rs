//! Scenario t1-04 beyond its fixes/ (which the golden test runs): a wrong nginx config is
//! refused with nginx's own words and the learner's line, nginx and every instance die with a
//! SIGKILLed lab, and a killed instance shows as down while nginx routes around it.
//!
//! Margins of the fixes (measured on the 2-core reference machine): one instance tops out
//! near 38 reports/s against 60 offered, so its queue grows without bound; the solution keeps
//! each instance under half of its share. Shares are counts, not timings: round robin
//! measures 33/33/33 against a ±20% band; ip_hash 0/100/0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const ID: &str = "t1-04";

fn dir() -> std::path::PathBuf {
    scenario_dir_of("t1-04-horizontal-scaling")
}

#[test]
fn a_wrong_nginx_config_is_refused_with_nginxs_words_and_the_learners_line() {
    let code_dir = variant_of(&dir().join("solution"));
    edit(
        &code_dir.path().join("deploy/nginx.conf"),
        "keepalive 32;",
        "keepalive 32;\n    proxy_passs nowhere;",
    );
    let (code, _, stderr) = check_scenario(
        &shared_home(),
        ID,
        &["--code", code_dir.path().to_str().unwrap()],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("unknown directive \"proxy_passs\""),
        "{}",
        tail(&stderr, 20)
    );
    assert!(
        stderr.contains("deploy/nginx.conf:"),
        "{}",
        tail(&stderr, 20)
    );
}

/// `sdlab start t1-04` on the learner's code in `home`, up to its ready line.
fn start_lab(home: &Path) -> (Child, String) {
    let started = start_scenario(home, ID);
    (started.child, started.url)
}

/// The children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
            let rest = &stat[stat.rfind(')').unwrap() + 1..];
            if rest.split_whitespace().nth(1) == Some(pid.to_string().as_str()) {
                found.push(child);
            }
        }
    }
    found
}

#[test]
fn nginx_and_every_instance_die_with_a_killed_lab() {
    let home = shared_home();
    let (mut lab, url) = start_lab(&home);
    // The learner's code is the broken service (one instance) unless an earlier test changed
    // it; either way every instance in the run state must go.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("run/t1-04.json")).unwrap()).unwrap();
    assert_eq!(
        state["nginx_url"].as_str(),
        Some(url.as_str()),
        "load goes to nginx: {state}"
    );
    let instances: Vec<u32> = state["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().unwrap() as u32)
        .collect();
    let prefix = home.join(format!("run/nginx-t1-04-{}", lab.id()));
    let master: u32 = std::fs::read_to_string(prefix.join("logs/nginx.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let workers = children(master);
    assert!(!workers.is_empty(), "nginx runs a worker");
    // This machine has cgroup v1's cpu controller (MACHINE-NOTES.md): each instance is in
    // its own group there. Elsewhere the lab may use v2 or signals instead.
    let v1 = Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists();
    let cgroups: Vec<std::path::PathBuf> = (1..=instances.len())
        .map(|i| {
            Path::new("/sys/fs/cgroup/cpu/sdlab/t1-04").join(format!("{}-instance-{i}", lab.id()))
        })
        .filter(|_| v1)
        .collect();
    for (i, group) in cgroups.iter().enumerate() {
        let procs = std::fs::read_to_string(group.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|p| p == instances[i].to_string()),
            "instance {} is in {}",
            i + 1,
            group.display()
        );
    }
    let response = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{url}/reports/7"),
        ])
        .output();
    if let Ok(out) = response {
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "a report through nginx"
        );
    }
    kill(lab.id(), libc::SIGKILL);
    lab.wait().unwrap();
    for pid in instances
        .iter()
        .chain([master].iter())
        .chain(workers.iter())
    {
        assert!(
            gone_within(*pid, Duration::from_secs(10)),
            "pid {pid} outlived the lab"
        );
    }
    // The next start cleans what a killed lab could not: its cgroups and nginx prefix.
    let (mut again, _) = start_lab(&home);
    assert!(
        !prefix.exists(),
        "the killed lab's nginx prefix is cleaned up"
    );
    for group in &cgroups {
        assert!(!group.exists(), "{} is cleaned up", group.display());
    }
    let again_prefix = home.join(format!("run/nginx-t1-04-{}", again.id()));
    kill(again.id(), libc::SIGTERM);
    again.wait().unwrap();
    assert!(
        !again_prefix.join("logs/nginx.pid").exists(),
        "a stopped lab leaves no nginx"
    );
}

/// Restores the learner's deploy files when the test ends, however it ends.
struct RestoreFiles(Vec<(std::path::PathBuf, Vec<u8>)>);

impl Drop for RestoreFiles {
    fn drop(&mut self) {
        for (path, bytes) in &self.0 {
            let _ = std::fs::write(path, bytes);
        }
    }
}

#[test]
fn a_killed_instance_shows_as_down_and_nginx_routes_around_it() {
    let home = shared_home();
    // The learner's copy exists once a lab has started; start one to create it if needed.
    let work = home.join("work/t1-04-horizontal-scaling/service/deploy");
    if !work.exists() {
        let (mut lab, _) = start_lab(&home);
        kill(lab.id(), libc::SIGTERM);
        lab.wait().unwrap();
    }
    let files = ["lab.toml", "nginx.conf"].map(|f| work.join(f));
    let _restore = RestoreFiles(
        files
            .iter()
            .map(|p| (p.clone(), std::fs::read(p).unwrap()))
            .collect(),
    );
    std::fs::write(&files[0], "instances = 2\n").unwrap();
    let solution = std::fs::read_to_string(dir().join("solution/deploy/nginx.conf")).unwrap();
    std::fs::write(
        &files[1],
        solution.replace("    server {{instance_3}};\n", ""),
    )
    .unwrap();

    let log = tempfile::NamedTempFile::new().unwrap();
    let mut lab = sdlab(&home)
        .args(["start", ID])
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    let mut stdout = BufReader::new(lab.stdout.take().unwrap());
    while !ready.starts_with("ready t1-04 ") {
        ready.clear();
        assert!(
            stdout.read_line(&mut ready).unwrap() > 0,
            "sdlab start ended before ready"
        );
    }
    let url = ready.trim().trim_start_matches("ready t1-04 ").to_string();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("run/t1-04.json")).unwrap()).unwrap();
    let pids: Vec<u32> = state["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(
        pids.len(),
        2,
        "deploy/lab.toml asked for 2 instances: {state}"
    );
    kill(pids[1], libc::SIGKILL);
    assert!(gone_within(pids[1], Duration::from_secs(5)));

    // The live line names the instance as down within a few samples: no hang.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen = std::fs::read_to_string(log.path()).unwrap();
        if seen.contains("i2 DOWN") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        seen.contains("i2 DOWN"),
        "no DOWN for instance 2 in:\n{}",
        tail(&seen, 20)
    );
    assert!(seen.contains("instance 2) exited"), "{}", tail(&seen, 20));

    // nginx passes the dead instance's requests to the live one.
    for _ in 0..6 {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-m",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{url}/reports/3"),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    }
    // nginx stopping is reported too, with its error log, rather than left to be guessed.
    let prefix = home.join(format!("run/nginx-t1-04-{}", lab.id()));
    let master: u32 = std::fs::read_to_string(prefix.join("logs/nginx.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill(master, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline
        && !std::fs::read_to_string(log.path())
            .unwrap()
            .contains("nginx exited")
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = std::fs::read_to_string(log.path()).unwrap();
    assert!(seen.contains("nginx exited"), "{}", tail(&seen, 20));
    kill(lab.id(), libc::SIGTERM);
    lab.wait().unwrap();
}
