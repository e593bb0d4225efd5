//! Integration tests: real nginx processes, each in its own temp prefix on a free port.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use sdlab_embedded_nginx::{
    access_log_lines, find_binary_in, stop_stale, validate, Error, Nginx, NginxOptions,
};

const HELLO: &str =
    "server {\n    listen {{listen}};\n    location / { return 200 \"hello\\n\"; }\n}\n";

fn options(prefix: &Path, site: &str) -> NginxOptions {
    NginxOptions {
        prefix: prefix.to_path_buf(),
        site: site.to_string(),
        site_label: "deploy/nginx.conf".into(),
        port: None,
    }
}

/// One HTTP/1.0 GET; the whole response as text.
fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with(['Z', 'X']))
    })
}

fn wait_gone(pids: &[u32], within: Duration) -> bool {
    let started = Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        if started.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[tokio::test]
async fn a_started_nginx_answers_on_loopback_logs_and_leaves_nothing_after_stop() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(options(dir.path(), HELLO)).await.unwrap();
    let response = get(nginx.port(), "/").unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello\n"), "{response}");
    let workers = nginx.worker_pids();
    assert_eq!(workers.len(), 1, "one worker process");
    assert!(dir.path().join("logs/nginx.pid").exists());
    assert!(std::fs::read_to_string(nginx.access_log_path())
        .unwrap()
        .contains("\"GET / HTTP/1.0\""));
    let master = nginx.pid();
    nginx.stop().await;
    assert!(wait_gone(&[master], Duration::from_secs(5)));
    assert!(
        wait_gone(&workers, Duration::from_secs(5)),
        "workers stop with the master"
    );
}

#[tokio::test]
async fn a_proxied_request_is_logged_with_the_upstream_that_answered() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Nginx::start(options(&dir.path().join("backend"), HELLO))
        .await
        .unwrap();
    let site = format!(
        "upstream app {{ server 127.0.0.1:{}; }}\nserver {{ listen {{{{listen}}}}; location / {{ proxy_pass http://app; }} }}\n",
        backend.port()
    );
    let front = Nginx::start(options(&dir.path().join("front"), &site))
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(get(front.port(), "/").unwrap().ends_with("hello\n"));
    }
    let log = std::fs::read_to_string(front.access_log_path()).unwrap();
    let counts = access_log_lines(&log);
    assert_eq!(
        counts.get(&format!("127.0.0.1:{}", backend.port())),
        Some(&3),
        "{log}"
    );
}

#[tokio::test]
async fn an_invalid_config_is_refused_with_nginxs_own_words_and_the_learners_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let site = "server {\n    listen {{listen}};\n    proxy_passs http://x;\n}\n";
    let err = Nginx::start(options(dir.path(), site)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Invalid { .. }), "{text}");
    assert!(text.contains("unknown directive \"proxy_passs\""), "{text}");
    assert!(text.contains("deploy/nginx.conf:3"), "{text}");
    assert!(
        !dir.path().join("logs/nginx.pid").exists(),
        "nothing was started"
    );
    let err = validate(dir.path(), site, "deploy/nginx.conf").unwrap_err();
    assert!(err.to_string().contains("deploy/nginx.conf:3"), "{err}");
    validate(dir.path(), HELLO, "deploy/nginx.conf").unwrap();
}

#[tokio::test]
async fn a_listen_on_a_public_address_is_refused_before_nginx_runs() {
    let dir = tempfile::tempdir().unwrap();
    let err = Nginx::start(options(dir.path(), "server { listen 0.0.0.0:8080; }\n"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotLoopback { line: 1, .. }), "{err}");
}

#[tokio::test]
async fn reload_applies_a_valid_config_and_keeps_serving_the_old_one_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let mut nginx = Nginx::start(options(dir.path(), HELLO)).await.unwrap();
    let master = nginx.pid();
    nginx
        .reload(&HELLO.replace("hello", "again"))
        .await
        .unwrap();
    assert!(get(nginx.port(), "/").unwrap().ends_with("again\n"));
    let err = nginx
        .reload("server { listen {{listen}}; bogus; }")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(
        get(nginx.port(), "/").unwrap().ends_with("again\n"),
        "the running config is untouched"
    );
    assert_eq!(nginx.pid(), master, "a reload keeps the master");
}

#[test]
fn a_missing_nginx_says_how_to_install_it() {
    let err = find_binary_in(
        None,
        Path::new("/nonexistent/nginx"),
        Some("/nonexistent".into()),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("sudo apt-get install nginx"),
        "{err}"
    );
    let err = find_binary_in(
        Some("/nonexistent/nginx".into()),
        Path::new("/usr/sbin/nginx"),
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("SDLAB_NGINX_BIN=/nonexistent/nginx"),
        "{err}"
    );
}

#[tokio::test]
async fn workers_left_by_a_killed_master_are_stopped_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(options(dir.path(), HELLO)).await.unwrap();
    let (master, workers, port) = (nginx.pid(), nginx.worker_pids(), nginx.port());
    // A crash: the guard never runs and the master dies by SIGKILL, orphaning its worker.
    std::mem::forget(nginx);
    unsafe { libc_kill(master) };
    assert!(wait_gone(&[master], Duration::from_secs(5)));
    assert!(
        workers.iter().all(|w| alive(*w)),
        "a SIGKILLed master leaves its workers"
    );
    assert!(get(port, "/").is_ok(), "and they still serve");
    let stopped = stop_stale(dir.path()).unwrap();
    assert!(
        workers.iter().all(|w| stopped.contains(w)),
        "{stopped:?} vs {workers:?}"
    );
    assert!(wait_gone(&workers, Duration::from_secs(5)));
    let again = Nginx::start(options(dir.path(), HELLO)).await.unwrap();
    assert!(get(again.port(), "/").unwrap().ends_with("hello\n"));
}

/// Run as a child by the test below: starts nginx, prints its pids, waits to be killed.
#[tokio::test]
async fn child_lab_that_starts_nginx_and_waits() {
    let Ok(prefix) = std::env::var("SDLAB_NGINX_TEST_CHILD") else {
        return;
    };
    let nginx = Nginx::start(options(Path::new(&prefix), HELLO))
        .await
        .unwrap();
    let mut pids = vec![nginx.pid()];
    pids.extend(nginx.worker_pids());
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    std::fs::write(Path::new(&prefix).join("pids.txt"), list.join(" ")).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[test]
fn nginx_and_its_workers_die_when_the_lab_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("nginx");
    let mut lab = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_lab_that_starts_nginx_and_waits",
            "--nocapture",
        ])
        .env("SDLAB_NGINX_TEST_CHILD", &prefix)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pids_file = prefix.join("pids.txt");
    let started = Instant::now();
    while !pids_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the child lab never started nginx"
        );
        assert!(
            lab.try_wait().unwrap().is_none(),
            "the child lab exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    let pids: Vec<u32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.len() >= 2, "master and a worker: {pids:?}");
    assert!(pids.iter().all(|p| alive(*p)));
    lab.kill().unwrap(); // SIGKILL: no destructor runs in the lab.
    lab.wait().unwrap();
    assert!(
        wait_gone(&pids, Duration::from_secs(10)),
        "nginx outlived the lab: {pids:?}"
    );
}

unsafe fn libc_kill(pid: u32) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    kill(pid as i32, 9);
}
