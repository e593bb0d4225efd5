//! The desktop app: System Design Lab's engine and web UI in one native window (Tauri v2).
//!
//! The shell is thin on purpose. It starts the engine's HTTP API in-process on 127.0.0.1 (a
//! free port, a per-launch token), opens one window on the UI that API serves (the same UI as
//! `sdlab serve`, so the UI only ever talks to the API), adds a menu, and on exit stops every
//! server and service the lab started before the process ends.
//!
//! Data lives where the CLI keeps it (`LabHome::from_env`: `$XDG_DATA_HOME/sdlab`, i.e.
//! `~/.local/share/sdlab`), so the app and `sdlab` share workspaces, databases and progress.
//! Scenarios, the built UI and vendored crates come from the installed package
//! (`/usr/share/sdlab`) or, run from a checkout, from the source tree (`Sources::from_env`).

use std::sync::Mutex;

use anyhow::Context;
use sdlab_engine::api::{self, ApiState};
use sdlab_engine::{doctor, Lab, LabHome, Sources};
use tauri::menu::{MenuBuilder, MenuEvent, SubmenuBuilder};
use tauri::{AppHandle, RunEvent, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_dialog::{DialogExt, MessageDialogKind};

/// What the exit handler needs to stop the lab: the signal for the API server, and the task
/// that finishes once the server has stopped the scenario it was running.
struct Engine {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tauri::async_runtime::JoinHandle<()>>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SDLAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run() {
        eprintln!("System Design Lab could not start: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let home = LabHome::from_env();
    let sources = Sources::from_env();
    let findings = doctor::check(&home, &sources);
    eprint!("{}", doctor::render(&findings));
    let lab = Lab::new(home.clone(), sources.clone()).with_context(|| {
        format!(
            "load the scenarios from {}",
            sources.scenarios_dir().display()
        )
    })?;

    // The API: loopback only, a free port, a token only this window knows.
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).context("bind a free port on 127.0.0.1")?;
    listener
        .set_nonblocking(true)
        .context("make the API socket non-blocking")?;
    let port = listener
        .local_addr()
        .context("read the API's address")?
        .port();
    let token = api::new_token();
    // `sdlab-desktop ID` (as `sdlab open ID` runs it) opens the page on that scenario; an
    // unknown id is ignored and the page opens on the one last open.
    let scenario = std::env::args()
        .nth(1)
        .filter(|id| lab.catalog.scenarios.iter().any(|s| &s.id == id));
    let url = match scenario {
        Some(id) => format!("http://127.0.0.1:{port}/#token={token}&scenario={id}"),
        None => format!("http://127.0.0.1:{port}/#token={token}"),
    };
    let state = ApiState::new(lab, token, port)
        .context("prepare the lab's API")?
        .ui_dir(sources.ui_dir());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tauri::async_runtime::spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return eprintln!("cannot serve the lab's API: {e}"),
        };
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = api::serve_with(listener, state, shutdown).await {
            eprintln!("the lab's API stopped: {e}");
        }
    });
    // Where the window points; scripts and tests read this line (as with `sdlab serve`).
    println!("serving {url}");

    let engine = Mutex::new(Engine {
        stop: Some(stop),
        served: Some(served),
    });
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .setup(move |app| {
            let handle = app.handle();
            let lab_menu = SubmenuBuilder::new(handle, "Lab")
                .text("workspace", "Open workspace folder")
                .text("terminal", "Open a terminal in the workspace")
                .text("psql", "PostgreSQL shell (psql)…")
                .separator()
                .text("doctor", "Check this machine…")
                .text("about", "About System Design Lab")
                .separator()
                .quit()
                .build()?;
            let edit_menu = SubmenuBuilder::new(handle, "Edit")
                .undo()
                .redo()
                .separator()
                .cut()
                .copy()
                .paste()
                .select_all()
                .build()?;
            let menu = MenuBuilder::new(handle)
                .items(&[&lab_menu, &edit_menu])
                .build()?;
            app.set_menu(menu)?;
            let window_url = url
                .parse()
                .map_err(|e| anyhow::anyhow!("the UI's address {url}: {e}"))?;
            WebviewWindowBuilder::new(handle, "main", WebviewUrl::External(window_url))
                .title("System Design Lab")
                .inner_size(1400.0, 900.0)
                .min_inner_size(900.0, 600.0)
                .build()?;
            // SIGTERM (logout, `kill`) and Ctrl-C in a terminal end the app the way closing
            // the window does, so the exit handler still stops everything the lab started.
            #[cfg(unix)]
            {
                let handle = handle.clone();
                tauri::async_runtime::spawn(async move {
                    use tokio::signal::unix::{signal, SignalKind};
                    let Ok(mut term) = signal(SignalKind::terminate()) else {
                        return;
                    };
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                    handle.exit(0);
                });
            }
            let blocking = doctor::blocking(&findings);
            if !blocking.is_empty() {
                let text: Vec<String> = blocking
                    .iter()
                    .map(|f| format!("{}\n→ {}", f.what, f.fix))
                    .collect();
                handle
                    .dialog()
                    .message(format!(
                        "This machine is missing what the lab needs to start a scenario:\n\n{}\n\n\
                         You can browse the scenarios now; install these, then restart the app.",
                        text.join("\n\n")
                    ))
                    .title("System Design Lab: something is missing")
                    .kind(MessageDialogKind::Warning)
                    .show(|_| {});
            }
            Ok(())
        })
        .on_menu_event(move |app, event| on_menu(app, &event, &home, &sources))
        .build(tauri::generate_context!())
        .context("open the window")?;

    app.run(move |_app, event| {
        // The last window closed (or Quit): stop the API, which stops the running scenario
        // (services, nginx, PostgreSQL), and wait for it before the process exits.
        if let RunEvent::Exit = event {
            let mut engine = engine.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(stop) = engine.stop.take() {
                let _ = stop.send(());
            }
            if let Some(served) = engine.served.take() {
                let _ = tauri::async_runtime::block_on(served);
            }
            eprintln!("Stopped.");
        }
    });
    Ok(())
}

fn on_menu(app: &AppHandle, event: &MenuEvent, home: &LabHome, sources: &Sources) {
    let work = home.work_dir();
    match event.id().as_ref() {
        "workspace" => {
            let _ = std::fs::create_dir_all(&work);
            if let Err(e) = open_folder(&work) {
                info(
                    app,
                    "Workspace folder",
                    &format!("Your code is in {}\n\n({e})", work.display()),
                );
            }
        }
        "terminal" => {
            let _ = std::fs::create_dir_all(&work);
            let spawned = std::process::Command::new("x-terminal-emulator")
                .current_dir(&work)
                .spawn();
            if let Err(e) = spawned {
                info(
                    app,
                    "Terminal",
                    &format!(
                        "No terminal could be opened ({e}). Open one yourself and run:\n\ncd {}",
                        work.display()
                    ),
                );
            }
        }
        "psql" => info(app, "PostgreSQL shell", &psql_hint(home)),
        "doctor" => info(
            app,
            "This machine",
            &doctor::render(&doctor::check(home, sources)),
        ),
        "about" => info(app, "About System Design Lab", &about(sources)),
        _ => {}
    }
}

fn info(app: &AppHandle, title: &str, text: &str) {
    app.dialog()
        .message(text)
        .title(title)
        .kind(MessageDialogKind::Info)
        .show(|_| {});
}

/// Opens a folder in the desktop's file manager.
fn open_folder(dir: &std::path::Path) -> std::io::Result<()> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(dir)
        .spawn()
        .map(drop)
}

/// How to reach the running scenario's PostgreSQL from a terminal, from the lab's run state.
fn psql_hint(home: &LabHome) -> String {
    let mut running = Vec::new();
    if let Ok(entries) = std::fs::read_dir(home.run_dir()) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let Ok(state) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                    continue;
                };
                let id = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                if let Some(url) = state.get("postgres_url").and_then(|u| u.as_str()) {
                    running.push(format!("{id}:  psql '{url}'"));
                }
            }
        }
    }
    let how = if running.is_empty() {
        "No scenario's database is running: press Start first.".to_string()
    } else {
        format!("From a terminal:\n{}", running.join("\n"))
    };
    format!(
        "The SQL console (Diagnose tab) runs EXPLAIN ANALYZE and read-only queries on the scenario's \
         database.\n\n{how}\n\nOr, with the CLI: sdlab sql <scenario> \"select ...\""
    )
}

/// Versions of the app and of the servers it runs.
fn about(sources: &Sources) -> String {
    let version = |f: doctor::Finding| {
        if f.ok {
            f.detail
        } else {
            format!("not found: {}", f.fix)
        }
    };
    format!(
        "System Design Lab {}\n\nPostgreSQL: {}\nnginx: {}\nRedis: {}\n\nScenarios: {}",
        env!("CARGO_PKG_VERSION"),
        version(doctor::postgres()),
        version(doctor::nginx()),
        doctor::redis_version()
            .unwrap_or_else(|| "not installed (no current scenario uses it)".to_string()),
        sources.root.display()
    )
}
