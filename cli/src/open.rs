//! `sdlab` with no arguments, or `sdlab open [ID]`: opens the lab the best way this machine
//! allows. The desktop window when `sdlab-desktop` is installed and there is a display; else
//! `sdlab serve` in the foreground with the page opened in the default browser (xdg-open);
//! else (no display: SSH, a container) `sdlab serve` with the address printed and how to
//! reach it from another computer. `choose` is that rule, on what was found.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};

/// The desktop app's binary, as the .deb installs it (`mainBinaryName` in
/// src-tauri/tauri.conf.json).
const DESKTOP: &str = "sdlab-desktop";

/// How `sdlab open` shows the lab.
#[derive(Debug, PartialEq, Eq)]
pub enum Way {
    /// Launch the desktop app (this binary).
    Desktop(PathBuf),
    /// Serve, and open the page with this `xdg-open`.
    Browser(PathBuf),
    /// Serve, and print the address and how to reach it.
    Print,
}

/// The rule: the window needs a display, and so does a browser opened from here; without
/// one (SSH, a container) the only way is the printed address.
pub fn choose(desktop: Option<PathBuf>, display: bool, xdg_open: Option<PathBuf>) -> Way {
    match (display, desktop, xdg_open) {
        (true, Some(desktop), _) => Way::Desktop(desktop),
        (true, None, Some(xdg_open)) => Way::Browser(xdg_open),
        _ => Way::Print,
    }
}

/// The page's address: the token (and the scenario to open) in the fragment, which the
/// browser never sends to the server (ui/src/api.ts reads both and clears them).
pub fn page_url(port: u16, token: &str, scenario: Option<&str>) -> String {
    let mut url = format!("http://127.0.0.1:{port}/#token={token}");
    if let Some(id) = scenario {
        url.push_str("&scenario=");
        url.push_str(id);
    }
    url
}

/// An executable file named `name` in one of `path`'s folders (as a shell would find it).
fn find_in(path: Option<&std::ffi::OsStr>, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

pub async fn open(id: Option<&str>) -> Result<ExitCode> {
    // An unknown id fails here, before anything is launched; the page gets the catalog's id.
    let scenario = match id {
        Some(id) => Some(crate::commands::scenario(&crate::commands::lab()?, id)?.id),
        None => None,
    };
    let path = std::env::var_os("PATH");
    let way = choose(
        find_in(path.as_deref(), DESKTOP),
        has_display(),
        find_in(path.as_deref(), "xdg-open"),
    );
    match way {
        Way::Desktop(desktop) => launch_desktop(&desktop, scenario.as_deref()),
        Way::Browser(xdg_open) => {
            let run_dir = crate::commands::lab()?.home.run_dir();
            crate::commands::serve_then(None, &[], scenario.as_deref(), |url, port| {
                eprintln!(
                    "Opening the lab in your browser. If no page opens, open the address above.\n\
                     Ctrl-C stops the lab (and any scenario it started)."
                );
                match redirect_file(&run_dir, port, url) {
                    Ok(file) => open_in_browser(&xdg_open, &file.display().to_string()),
                    Err(e) => eprintln!(
                        "cannot write {} ({e}): open the address above yourself.",
                        run_dir.display()
                    ),
                }
            })
            .await
        }
        Way::Print => {
            crate::commands::serve_then(None, &[], scenario.as_deref(), |_, port| {
                eprintln!(
                    "Cannot open a browser from here (no display, e.g. over SSH, or no xdg-open): \
                     open the address above in a browser on this machine, or from your own \
                     computer: forward the port with\n  \
                     ssh -L {port}:127.0.0.1:{port} <this machine>\n\
                     and open the same address there.\n\
                     Ctrl-C stops the lab (and any scenario it started)."
                );
            })
            .await
        }
    }
}

/// Starts the window in its own process group, so closing this terminal or Ctrl-C here does
/// not close it; it runs its own engine, so `sdlab` is done.
fn launch_desktop(desktop: &Path, scenario: Option<&str>) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    Command::new(desktop)
        // The window opens on it (an older app ignores the argument: the last one open).
        .args(scenario)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {}", desktop.display()))?;
    println!(
        "Opened the System Design Lab window ({}).",
        desktop.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the page's address, token included, into `<run dir>/open-<port>.html`, readable by
/// this user only, and returns its path: the browser is handed the file, which sends it on to
/// the address, so the token never appears on a command line (`ps` shows every user's), as
/// Jupyter does. The token dies with this serve; the next one on the port overwrites the file.
pub fn redirect_file(run_dir: &Path, port: u16, url: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(run_dir)?;
    let path = run_dir.join(format!("open-{port}.html"));
    // A file left by another user or a link must not receive the token: replace it.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let href = url.replace('&', "&amp;").replace('"', "&quot;");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    write!(
        file,
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>System Design Lab</title>\n\
         <meta http-equiv=\"refresh\" content=\"0;url={href}\">\n\
         <p><a href=\"{href}\">Open the System Design Lab</a></p>\n"
    )?;
    Ok(path)
}

/// Runs `xdg-open URL` on a thread (it returns once the browser has the page, or fails), and
/// says so if it fails: the address is printed above either way.
fn open_in_browser(xdg_open: &Path, url: &str) {
    let mut cmd = Command::new(xdg_open);
    cmd.arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let shown = xdg_open.display().to_string();
    std::thread::spawn(move || match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("{shown} failed ({status}): open the address above yourself."),
        Err(e) => eprintln!("cannot run {shown} ({e}): open the address above yourself."),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(p: &str) -> Option<PathBuf> {
        Some(PathBuf::from(p))
    }

    #[test]
    fn the_window_comes_first_when_it_is_installed_and_there_is_a_display() {
        assert_eq!(
            choose(
                some("/usr/bin/sdlab-desktop"),
                true,
                some("/usr/bin/xdg-open")
            ),
            Way::Desktop(PathBuf::from("/usr/bin/sdlab-desktop"))
        );
        assert_eq!(
            choose(some("/usr/bin/sdlab-desktop"), true, None),
            Way::Desktop(PathBuf::from("/usr/bin/sdlab-desktop"))
        );
    }

    #[test]
    fn without_the_window_a_display_and_xdg_open_open_the_browser() {
        assert_eq!(
            choose(None, true, some("/usr/bin/xdg-open")),
            Way::Browser(PathBuf::from("/usr/bin/xdg-open"))
        );
    }

    #[test]
    fn without_a_display_the_address_is_printed_even_with_the_window_installed() {
        assert_eq!(
            choose(
                some("/usr/bin/sdlab-desktop"),
                false,
                some("/usr/bin/xdg-open")
            ),
            Way::Print
        );
        assert_eq!(choose(None, false, None), Way::Print);
    }

    #[test]
    fn a_display_without_xdg_open_or_the_window_prints_the_address() {
        assert_eq!(choose(None, true, None), Way::Print);
    }

    #[test]
    fn the_page_address_carries_the_token_and_the_scenario_in_its_fragment() {
        assert_eq!(
            page_url(4321, "abc", None),
            "http://127.0.0.1:4321/#token=abc"
        );
        assert_eq!(
            page_url(4321, "abc", Some("t1-05")),
            "http://127.0.0.1:4321/#token=abc&scenario=t1-05"
        );
    }

    #[test]
    fn the_browser_gets_a_private_file_that_leads_to_the_page_not_the_token_itself() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let url = "http://127.0.0.1:8790/#token=abc&scenario=t1-01";
        let file = redirect_file(dir.path(), 8790, url).unwrap();
        assert_eq!(file, dir.path().join("open-8790.html"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only this user may read the token");
        let html = std::fs::read_to_string(&file).unwrap();
        let escaped = "http://127.0.0.1:8790/#token=abc&amp;scenario=t1-01";
        assert!(
            html.contains(&format!("content=\"0;url={escaped}\"")),
            "{html}"
        );
        assert!(html.contains(&format!("href=\"{escaped}\"")), "{html}");
        // A second serve on the port replaces the file (its token is new).
        let again = redirect_file(dir.path(), 8790, "http://127.0.0.1:8790/#token=def").unwrap();
        assert!(std::fs::read_to_string(again)
            .unwrap()
            .contains("token=def"));
    }

    #[test]
    fn executables_are_found_on_the_path_and_other_files_are_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("xdg-open");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(find_in(Some(&path), "xdg-open"), None, "not executable");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_in(Some(&path), "xdg-open"), Some(tool));
        assert_eq!(find_in(Some(&path), "sdlab-desktop"), None);
        assert_eq!(find_in(None, "xdg-open"), None);
    }
}
