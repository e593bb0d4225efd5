//! `sdlab open` (and `sdlab` alone) for real: with a display and an `xdg-open` on PATH it
//! serves the lab and hands the browser the page's address, which answers; without a display
//! it prints the address and how to reach it over SSH; with the desktop app installed it
//! launches the window instead. PATH holds only fakes (`xdg-open`, `sdlab-desktop`), so no
//! installed app or browser is involved.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{fresh_home, gone_within, kill, line_channel, processes_mentioning, sdlab};

/// A folder holding an `xdg-open` that writes its argument to `called` (and nothing else).
fn fake_bin(called: &Path) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("sdlab-fakebin-")
        .tempdir_in("/tmp")
        .unwrap();
    let script = dir.path().join("xdg-open");
    // Shell builtins only (PATH holds nothing else); the newline marks the line complete.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" > '{}'\n",
            called.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// One GET to 127.0.0.1 (with the token as a bearer when given): status and body.
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Stops the lab with SIGTERM, as a desktop session's logout would; it must exit cleanly.
fn stop(mut child: Child, home: &Path) {
    kill(child.id(), libc::SIGTERM);
    assert!(
        gone_within(child.id(), Duration::from_secs(20)),
        "sdlab open did not stop on SIGTERM"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "sdlab open exited with {status}");
    let left = processes_mentioning(&home.display().to_string());
    assert!(left.is_empty(), "left running: {left:?}");
}

struct Running(Option<Child>);

impl Drop for Running {
    /// A failed assertion must not leave the server running.
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn open_command(home: &Path, path: &Path) -> Command {
    let mut cmd = sdlab(home);
    cmd.env("PATH", path)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn with_a_display_sdlab_open_serves_the_lab_and_hands_the_browser_its_address() {
    let home = fresh_home();
    let called = home.path().join("xdg-open-called");
    let bin = fake_bin(&called);
    // A UI of its own, so the page is known whether or not ui/dist is built here.
    let ui = home.path().join("ui");
    std::fs::create_dir_all(&ui).unwrap();
    std::fs::write(
        ui.join("index.html"),
        "<!doctype html><title>lab page</title>",
    )
    .unwrap();
    let mut cmd = open_command(home.path(), bin.path());
    cmd.env("DISPLAY", ":99")
        .env("SDLAB_UI_DIR", &ui)
        .args(["open", "t1-01"]);
    let mut running = Running(Some(cmd.spawn().unwrap()));
    let child = running.0.as_mut().unwrap();
    let out = line_channel(child.stdout.take().unwrap());
    let err = line_channel(child.stderr.take().unwrap());

    let deadline = Instant::now() + Duration::from_secs(60);
    let done = || std::fs::read_to_string(&called).is_ok_and(|s| s.ends_with('\n'));
    while !done() {
        assert!(
            Instant::now() < deadline,
            "xdg-open was not called; stderr: {:?}",
            err.try_iter().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The browser is handed a file only this user can read, which leads to the page: the
    // token is not on xdg-open's command line.
    let handed = std::fs::read_to_string(&called)
        .unwrap()
        .trim_end()
        .to_string();
    assert!(
        !handed.contains("token"),
        "the token is on a command line: {handed}"
    );
    let html = std::fs::read_to_string(&handed).unwrap();
    let url = html
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no link in {handed}: {html}"))
        .replace("&amp;", "&");
    let printed = out.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        printed,
        format!("serving {url}"),
        "the terminal shows the same address"
    );
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("not a loopback address: {url}"));
    let (port, fragment) = rest.split_once("/#").unwrap();
    let addr = format!("127.0.0.1:{port}");
    let token = fragment
        .strip_prefix("token=")
        .and_then(|f| f.strip_suffix("&scenario=t1-01"))
        .unwrap_or_else(|| panic!("the fragment has no token and scenario: {fragment}"));

    let (code, page) = get(&addr, "/", None);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("<title>lab page</title>"), "{page}");
    let (code, list) = get(&addr, "/api/scenarios", Some(token));
    assert_eq!(code, 200, "{list}");
    assert!(list.contains("\"t1-01\""), "{list}");
    let (code, _) = get(&addr, "/api/scenarios", Some("not-the-token"));
    assert_eq!(code, 401, "the API still wants the token");

    let said: Vec<String> = err.try_iter().collect();
    assert!(
        said.iter()
            .any(|l| l.contains("Opening the lab in your browser")),
        "{said:?}"
    );
    stop(running.0.take().unwrap(), home.path());
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the port still answers after the lab stopped"
    );
}

#[test]
fn without_a_display_sdlab_alone_prints_the_address_and_how_to_reach_it() {
    let home = fresh_home();
    let called = home.path().join("xdg-open-called");
    let bin = fake_bin(&called);
    // xdg-open is there, but with no display it must not be used.
    let mut running = Running(Some(open_command(home.path(), bin.path()).spawn().unwrap()));
    let child = running.0.as_mut().unwrap();
    let out = line_channel(child.stdout.take().unwrap());
    let err = line_channel(child.stderr.take().unwrap());

    let line = out.recv_timeout(Duration::from_secs(60)).unwrap();
    let rest = line
        .strip_prefix("serving http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let (port, token) = rest.split_once("/#token=").unwrap();
    assert_eq!(
        token.len(),
        64,
        "no scenario asked for, only the token: {line}"
    );
    let hint = format!("ssh -L {port}:127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = Vec::new();
    while !said.iter().any(|l: &String| l.contains(&hint)) && Instant::now() < deadline {
        if let Ok(l) = err.recv_timeout(Duration::from_millis(200)) {
            said.push(l);
        }
    }
    assert!(said.iter().any(|l| l.contains(&hint)), "{said:?}");
    assert!(
        said.iter()
            .any(|l| l.contains("Cannot open a browser from here")),
        "{said:?}"
    );
    let (code, _) = get(&format!("127.0.0.1:{port}"), "/api/scenarios", Some(token));
    assert_eq!(code, 200);
    assert!(!called.exists(), "xdg-open was run without a display");
    stop(running.0.take().unwrap(), home.path());
}

#[test]
fn with_the_desktop_app_installed_sdlab_open_launches_its_window_on_the_scenario_and_returns() {
    use std::os::unix::fs::PermissionsExt;
    let home = fresh_home();
    let called = home.path().join("xdg-open-called");
    let bin = fake_bin(&called);
    let launched = home.path().join("desktop-args");
    let app = bin.path().join("sdlab-desktop");
    std::fs::write(
        &app,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            launched.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = open_command(home.path(), bin.path());
    cmd.env("WAYLAND_DISPLAY", "wayland-0")
        .args(["open", "t1-03"]);
    let out = crate::harness::run(cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("Opened the System Design Lab window"),
        "{stdout}"
    );
    assert!(!stdout.contains("serving"), "it served too: {stdout}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = || std::fs::read_to_string(&launched).is_ok_and(|s| s.ends_with('\n'));
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&launched).unwrap(), "t1-03\n");
    assert!(!called.exists(), "the browser was opened as well");
}

#[test]
fn an_unknown_scenario_is_refused_before_anything_opens() {
    let home = fresh_home();
    let called = home.path().join("xdg-open-called");
    let bin = fake_bin(&called);
    let mut cmd = open_command(home.path(), bin.path());
    cmd.env("DISPLAY", ":99").args(["open", "t9-99"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!called.exists(), "xdg-open was run for an unknown scenario");
}
