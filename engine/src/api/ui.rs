//! The web UI's built assets (`ui/dist`), served from disk at `/` with no token: they hold no
//! secret (the token reaches the page in the URL fragment, which browsers never send).
//!
//! The folder is `SDLAB_UI_DIR`, else `<sources>/ui/dist`. When it has no `index.html`, `/`
//! answers a page that says how to build it. Paths are confined like the learner's files: no
//! `..`, no symlink out of the folder.

use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};

use super::ApiState;

/// Where the built UI is looked for.
pub(super) fn default_dir(sources_root: &Path) -> PathBuf {
    std::env::var_os("SDLAB_UI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sources_root.join("ui").join("dist"))
}

/// Everything no route matched: a 404 under `/api`, else a `GET` of the UI's assets.
pub(super) async fn fallback(
    state: State<ApiState>,
    method: axum::http::Method,
    uri: Uri,
) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return super::ApiError::NotFound("no such API endpoint".to_string()).into_response();
    }
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "the web UI's files can only be read",
        )
            .into_response();
    }
    asset(state, uri).await
}

/// `GET` of anything outside `/api`: a file of the built UI, `index.html` for `/`.
async fn asset(State(state): State<ApiState>, uri: Uri) -> Response {
    let dir = state.ui_dir.as_path();
    let rel = uri.path().trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if !dir.join("index.html").is_file() {
        return not_built(dir).into_response();
    }
    let file = match super::files::confine(dir, rel) {
        Ok(file) => file,
        Err(e) => return e.into_response(),
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            // Vite puts a content hash in every asset's name, so those can be cached for
            // good; index.html names the current ones and must be fetched every time.
            let cache = if rel.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (header::CONTENT_TYPE, content_type(&file)),
                    (header::CACHE_CONTROL, cache),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::NOT_FOUND,
            format!("no file {rel:?} in the web UI"),
        )
            .into_response(),
    }
}

fn content_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "ttf" => "font/ttf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The page `/` shows when the UI has not been built: the API still works.
fn not_built(dir: &Path) -> (StatusCode, Html<String>) {
    let dir = html_escape(&dir.display().to_string());
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>System Design Lab</title>\
             <h1>The web UI is not built</h1>\
             <p>The lab's API is running, but there is no built UI in <code>{dir}</code>.</p>\
             <p>Build it from the source tree (./install.sh does), then reload this page:</p>\
             <pre>bash scripts/build-ui.sh</pre>\
             <p>(or point <code>SDLAB_UI_DIR</code> at a built <code>dist/</code> folder and restart <code>sdlab serve</code>).</p>"
        )),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
