//! Generated inputs (proptest) against the two parsers a learner's hands reach: `scenario.toml`
//! (hand-edited or corrupt) and the file paths of the editor's API. A scenario file never
//! panics the catalog and every error names the file and the field or line; a path, however it
//! is built (`..`, absolute, percent-encoded, NUL, through symlinks out of the folder or to
//! nothing), never reads or writes outside the learner's service folder.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sdlab_engine::api::{self, ApiState};
use sdlab_engine::catalog::{parse_scenario, CatalogError};
use sdlab_engine::{Lab, LabHome, Sources};
use tower::ServiceExt;

#[path = "../../../cli/tests/it/summary.rs"]
mod summary;

const PORT: u16 = 45124;
const TOKEN: &str = "fedcba9876543210fedcba9876543210";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(cases: u32) -> Config {
    // No regression files in the source tree; a failure prints its minimal input instead.
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// t1-01's real scenario file, the base every mutation starts from.
fn t1_01() -> (PathBuf, String) {
    let file = repo().join("scenarios/t1-01-diagnosing-failures/scenario.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    (file, text)
}

/// A TOML value of any type, including ones no field expects.
fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z0-9 ._/-]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("\"0s\"".to_string()),
        Just("\"-1s\"".to_string()),
        Just("\"999999999999999999999m\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("[1, \"two\"]".to_string()),
        Just("{ zipf = { n = 0, s = -1.0 } }".to_string()),
        Just("\"../../../../etc/passwd\"".to_string()),
    ]
}

/// `(line index, key)` of every one-line `key = value` in `text`.
fn assignments(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let (key, value) = l.split_once(" = ")?;
            let key = key.trim();
            // Only values complete on their line: replacing the first line of a multi-line
            // array would leave its tail dangling, a different (and unrealistic) edit.
            // The same for the first line of a multi-line string (an oracle's SQL).
            let opens_string = ["\"\"\"", "'''"]
                .iter()
                .any(|q| value.trim_start().starts_with(q) && value.matches(q).count() == 1);
            let whole = !value.trim_end().ends_with(['[', '{']) && !opens_string;
            (whole && !key.starts_with('#') && !key.is_empty() && !key.contains(' '))
                .then(|| (i, key.to_string()))
        })
        .collect()
}

/// Every error says which file, and where: the field (`Invalid`) or the line (`Parse`).
fn assert_names_where(err: &CatalogError, file: &Path, key: Option<&str>) {
    let text = err.to_string();
    assert!(
        text.contains(&file.display().to_string()),
        "error does not name the file: {text}"
    );
    match err {
        CatalogError::Invalid {
            field, expected, ..
        } => {
            assert!(!field.is_empty() && !expected.is_empty(), "{text}")
        }
        CatalogError::Parse { message, .. } => {
            assert!(
                message.contains("line "),
                "a parse error without a line: {text}"
            );
            if let Some(key) = key {
                // toml's message quotes the offending line, so the key is in it.
                assert!(
                    message.contains(key),
                    "the error does not show the key {key:?}: {text}"
                );
            }
        }
        other => panic!("unexpected error kind for a scenario text: {other}"),
    }
}

#[test]
fn a_hand_edited_scenario_toml_never_panics_and_errors_name_the_field() {
    let mut case = summary::Case::new("fuzz: scenario.toml with one value replaced (any type)");
    let (file, text) = t1_01();
    let lines: Vec<&str> = text.lines().collect();
    let keys = assignments(&text);
    assert!(keys.len() > 20, "{keys:?}");
    let mut runner = TestRunner::new(config(400));
    let inputs = std::cell::Cell::new(0u64);
    runner
        .run(&(0..keys.len(), any_value()), |(k, value)| {
            inputs.set(inputs.get() + 1);
            let (line, key) = &keys[k];
            let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            edited[*line] = format!("{key} = {value}");
            let edited = edited.join("\n");
            // Catching a panic here turns it into a minimal failing input from proptest.
            let parsed = std::panic::catch_unwind(|| parse_scenario(&file, &edited));
            prop_assert!(parsed.is_ok(), "parse_scenario panicked on {key} = {value}");
            if let Err(err) = parsed.unwrap() {
                assert_names_where(&err, &file, Some(key));
            }
            Ok(())
        })
        .unwrap();
    // Each generated input is a case tried.
    (0..inputs.get()).for_each(|_| case.survived());
}

#[test]
fn a_truncated_or_garbled_scenario_toml_never_panics() {
    let mut case =
        summary::Case::new("fuzz: scenario.toml truncated, lines dropped, bytes garbled");
    let (file, text) = t1_01();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut runner = TestRunner::new(config(400));
    let edit = (
        0..text.len(),
        0..lines.len(),
        0..lines.len(),
        any::<u8>(),
        0..3usize,
    );
    let inputs = std::cell::Cell::new(0u64);
    runner
        .run(&edit, |(cut, drop_line, garble_line, byte, kind)| {
            inputs.set(inputs.get() + 1);
            let edited = match kind {
                // A save that stopped half-way.
                0 => text.get(..cut).unwrap_or(&text).to_string(),
                // A line deleted by hand.
                1 => lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != drop_line)
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                // One byte of a line replaced (may make invalid UTF-8 text lossy).
                _ => {
                    let mut edited = lines.clone();
                    let l = &mut edited[garble_line];
                    let at = cut % (l.len() + 1);
                    l.insert_str(at, &String::from_utf8_lossy(&[byte]));
                    edited.join("\n")
                }
            };
            let parsed = std::panic::catch_unwind(|| parse_scenario(&file, &edited));
            prop_assert!(parsed.is_ok(), "parse_scenario panicked");
            if let Err(err) = parsed.unwrap() {
                assert_names_where(&err, &file, None);
            }
            Ok(())
        })
        .unwrap();
    // Each generated input is a case tried.
    (0..inputs.get()).for_each(|_| case.survived());
}

/// One piece of a generated path: plain names, traversal in every spelling, symlinks.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("src".to_string()),
        3 => Just("main.rs".to_string()),
        2 => Just("new.rs".to_string()),
        3 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just("".to_string()),
        2 => Just("%2e%2e".to_string()),
        1 => Just("%2E%2e%2f".to_string()),
        1 => Just("..%2f..".to_string()),
        1 => Just("%252e%252e".to_string()),
        1 => Just("%00".to_string()),
        1 => Just("a%00b".to_string()),
        1 => Just("\\..\\".to_string()),
        1 => Just("%2fetc%2fpasswd".to_string()),
        3 => Just("out".to_string()),
        2 => Just("secret.txt".to_string()),
        2 => Just("to_secret".to_string()),
        2 => Just("dangling".to_string()),
        2 => Just("inside".to_string()),
        1 => "[a-z%.]{1,6}",
    ]
}

fn generated_path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(segment(), 1..6)).prop_map(|(absolute, parts)| {
        let path = parts.join("/");
        if absolute {
            format!("/{path}")
        } else {
            path
        }
    })
}

/// Percent-encodes what a URI may not hold raw; `%` stays, so encoded segments reach the router.
fn to_uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every file under `dir` (not following symlinks) with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(files_under(&path));
        } else if kind.is_file() {
            found.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    found
}

#[test]
fn no_generated_path_reads_or_writes_outside_the_service_folder() {
    let mut case =
        summary::Case::new("fuzz: file API paths (.., absolute, encoded, NUL, symlinks)");
    let home = tempfile::tempdir().unwrap();
    let lab = Lab::new(LabHome::at(home.path().join("home")), Sources::at(repo())).unwrap();
    let app = api::router(ApiState::new(lab.clone(), TOKEN, PORT).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let send = |method: &str, uri: String, body: &'static str| {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", format!("127.0.0.1:{PORT}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::from(body))
            .unwrap();
        rt.block_on(async {
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).to_string())
        })
    };
    // The learner's folder exists after the first tree request.
    assert_eq!(
        send("GET", "/api/scenarios/t1-01/files".to_string(), "").0,
        StatusCode::OK
    );
    let service = lab.home.learner_service_dir(lab.scenario("t1-01").unwrap());
    // Outside the service folder: a secret, reachable only through symlinks placed inside.
    let outside = home.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "SECRET").unwrap();
    std::os::unix::fs::symlink(&outside, service.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), service.join("to_secret")).unwrap();
    std::os::unix::fs::symlink(outside.join("nothing/here"), service.join("dangling")).unwrap();
    std::os::unix::fs::symlink(service.join("src"), service.join("inside")).unwrap();
    let before_outside = files_under(home.path().join("home").parent().unwrap());
    let mut runner = TestRunner::new(config(600));
    let strategy = (generated_path(), any::<bool>());
    let inputs = std::cell::Cell::new(0u64);
    runner
        .run(&strategy, |(path, write)| {
            inputs.set(inputs.get() + 1);
            let uri = format!("/api/scenarios/t1-01/files/{}", to_uri(&path));
            let drafts = format!("/api/scenarios/t1-01/drafts/{}", to_uri(&path));
            let (status, body) = if write {
                let saved = send("PUT", uri.clone(), "FUZZ");
                send("PUT", drafts, "FUZZ-DRAFT");
                saved
            } else {
                send("GET", uri.clone(), "")
            };
            prop_assert!(
                !body.contains("SECRET"),
                "{uri} read the secret: {status} {body}"
            );
            prop_assert!(
                status != StatusCode::INTERNAL_SERVER_ERROR,
                "{uri}: {status} {body}"
            );
            // Outside the lab home's service and drafts folders nothing changed or appeared.
            let now: Vec<_> = files_under(home.path())
                .into_iter()
                .filter(|(p, _)| {
                    !p.starts_with(&service) && !p.starts_with(lab.home.root.join("drafts"))
                })
                .collect();
            let then: Vec<_> = before_outside
                .iter()
                .filter(|(p, _)| {
                    !p.starts_with(&service) && !p.starts_with(lab.home.root.join("drafts"))
                })
                .cloned()
                .collect();
            prop_assert_eq!(
                now,
                then,
                "{} ({}) wrote outside the service folder",
                uri,
                status
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "SECRET"
    );
    (0..inputs.get()).for_each(|_| case.survived());
}
