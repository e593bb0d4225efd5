//! The shop's static files: the same bytes for everyone, for as long as this build runs.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// `GET /static/{file}`: `app.js` or `app.css`, cacheable by anyone for 10 minutes.
pub async fn file(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "app.js" => (js(), "text/javascript"),
        "app.css" => (css(), "text/css"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=600"),
        ],
        body,
    )
        .into_response()
}

/// The shop's script bundle (about 120 kB, as a real one would be).
fn js() -> &'static str {
    static JS: OnceLock<String> = OnceLock::new();
    JS.get_or_init(|| {
        let mut s = String::from("/* app.js: the shop front's bundle */\n");
        for i in 0..2000 {
            s.push_str(&format!(
                "export function widget{i}(el) {{ el.dataset.widget = \"{i}\"; return el; }}\n"
            ));
        }
        s
    })
}

/// The shop's style sheet (about 40 kB).
fn css() -> &'static str {
    static CSS: OnceLock<String> = OnceLock::new();
    CSS.get_or_init(|| {
        let mut s = String::from("/* app.css: the shop front's styles */\n");
        for i in 0..1000 {
            s.push_str(&format!(".widget-{i} {{ margin: {}px; }}\n", i % 16));
        }
        s
    })
}
