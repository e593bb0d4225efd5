//! `sdlab new`: a new scenario folder from templates, as a small real lesson (an item lookup
//! by a column without an index) that lints, builds and passes its own golden test, for the
//! author to grow into theirs. The templates are the files under `scaffold/`, compiled in.
//!
//! The folder is written under a hidden name first and renamed into place at the end, so a
//! failure leaves no half-made scenario behind (the catalog and the lint skip hidden folders).

use std::path::{Path, PathBuf};

/// One template: where it goes in the new folder, and its text with `{{name}}` placeholders.
struct Template {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($path:literal, $file:literal) => {
        Template {
            path: $path,
            text: include_str!(concat!("scaffold/", $file)),
        }
    };
}

/// Every file of a new scenario. `{{code}}` in a template is `service` or `solution`.
const SCENARIO_FILES: &[Template] = &[
    template!("scenario.toml", "scenario.toml.tmpl"),
    template!("SCENARIO.md", "SCENARIO.md.tmpl"),
    template!("db/schema.sql", "db/schema.sql.tmpl"),
    template!("db/seed.sql", "db/seed.sql.tmpl"),
    template!("solution/SOLUTION.md", "solution/SOLUTION.md.tmpl"),
    template!(
        "solution/migrations/0001_items_sku_index.sql",
        "solution/migrations/0001_items_sku_index.sql.tmpl"
    ),
    template!("fixes/broken.toml", "fixes/broken.toml.tmpl"),
    template!("fixes/solution.toml", "fixes/solution.toml.tmpl"),
    template!(
        "fixes/two-column-index.toml",
        "fixes/two-column-index.toml.tmpl"
    ),
    template!("fixes/index-on-name.toml", "fixes/index-on-name.toml.tmpl"),
];

/// The files `service/` and `solution/` share (the solution adds its migration and notes).
const CODE_FILES: &[Template] = &[
    template!("Cargo.toml", "code/Cargo.toml.tmpl"),
    template!("src/main.rs", "code/src/main.rs.tmpl"),
    template!("src/app.rs", "code/src/app.rs.tmpl"),
    template!("migrations/README.md", "code/migrations/README.md.tmpl"),
];

/// The stages of a track, as `scenario.toml` spells them.
pub const STAGES: &[&str] = &["crawling", "walking", "running", "sprinting"];
/// The tracks `scenario.toml` accepts.
pub const TRACKS: std::ops::RangeInclusive<u8> = 1..=2;

/// What `sdlab new` was asked for.
#[derive(Debug, Clone)]
pub struct NewScenario {
    /// `t<track>-<nn>`, e.g. `t1-05`.
    pub id: String,
    pub title: String,
    /// Default: the track in the id when it is one (`t2-05` -> 2), else 1.
    pub track: Option<u8>,
    /// Default: `crawling`.
    pub stage: Option<String>,
}

/// The scenario made.
#[derive(Debug, Clone)]
pub struct Created {
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    pub track: u8,
    pub stage: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{field}: expected {expected}")]
    Invalid {
        field: &'static str,
        expected: String,
    },
    #[error("{} already exists; `sdlab new` never overwrites a scenario", .0.display())]
    Exists(PathBuf),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The folder-name part made from a title: lower-case words joined by '-'
/// ("Indexes and Slow Queries" -> "indexes-and-slow-queries").
pub fn slug(title: &str) -> String {
    title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// Creates `<scenarios_root>/<id>-<slug>/` from the templates. Refuses an existing folder or
/// an id another folder already uses.
pub fn create(scenarios_root: &Path, new: &NewScenario) -> Result<Created, ScaffoldError> {
    let invalid = |field, expected: String| ScaffoldError::Invalid { field, expected };
    if !super::validate::is_id(&new.id) {
        return Err(invalid(
            "id",
            format!("t<track>-<nn> such as \"t1-05\", got {:?}", new.id),
        ));
    }
    let slug = slug(&new.title);
    if slug.is_empty() {
        return Err(invalid(
            "--title",
            "a title with at least one letter or digit".to_string(),
        ));
    }
    let track = match new.track {
        Some(t) => t,
        None => new.id[1..2]
            .parse::<u8>()
            .ok()
            .filter(|t| TRACKS.contains(t))
            .unwrap_or(*TRACKS.start()),
    };
    if !TRACKS.contains(&track) {
        return Err(invalid(
            "--track",
            format!("{} to {}, got {track}", TRACKS.start(), TRACKS.end()),
        ));
    }
    let stage = new.stage.clone().unwrap_or_else(|| STAGES[0].to_string());
    if !STAGES.contains(&stage.as_str()) {
        return Err(invalid(
            "--stage",
            format!("one of {}; got {stage:?}", STAGES.join(", ")),
        ));
    }
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { what, path, source }
    };
    if !scenarios_root.is_dir() {
        return Err(ScaffoldError::Io {
            what: "find the scenarios folder",
            path: scenarios_root.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let folder = format!("{}-{slug}", new.id);
    let dir = scenarios_root.join(&folder);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let prefix = format!("{}-", new.id);
    for entry in std::fs::read_dir(scenarios_root).map_err(io("read", scenarios_root))? {
        let path = entry.map_err(io("read", scenarios_root))?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&prefix))
        {
            return Err(ScaffoldError::Exists(path));
        }
    }

    let fill = |text: &str, code: &str| {
        let toml_string = |s: String| toml::Value::String(s).to_string();
        text.replace("{{id}}", &new.id)
            .replace("{{title_toml}}", &toml_string(new.title.clone()))
            .replace(
                "{{description_toml}}",
                &toml_string(format!(
                    "Scenario {} ({}): the {code} version.",
                    new.id, new.title
                )),
            )
            .replace("{{title}}", &new.title)
            .replace("{{track}}", &track.to_string())
            .replace("{{stage}}", &stage)
            .replace("{{code}}", code)
    };
    let mut files: Vec<(PathBuf, String)> = SCENARIO_FILES
        .iter()
        .map(|t| (PathBuf::from(t.path), fill(t.text, "")))
        .collect();
    for code in ["service", "solution"] {
        for t in CODE_FILES {
            files.push((Path::new(code).join(t.path), fill(t.text, code)));
        }
    }

    // Written under a hidden name, then renamed: all or nothing.
    let staging = scenarios_root.join(format!(".{folder}.new-{}", std::process::id()));
    let written = (|| {
        for (rel, text) in &files {
            let path = staging.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io("create", parent))?;
            }
            std::fs::write(&path, text).map_err(io("write", &path))?;
        }
        std::fs::rename(&staging, &dir).map_err(io("create", &dir))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let mut files: Vec<PathBuf> = files.into_iter().map(|(rel, _)| rel).collect();
    files.sort();
    Ok(Created {
        dir,
        files,
        track,
        stage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_words() {
        assert_eq!(slug("Indexes and Slow Queries"), "indexes-and-slow-queries");
        assert_eq!(slug("  Caching: read-through!  "), "caching-read-through");
        assert_eq!(slug("!!"), "");
    }
}
