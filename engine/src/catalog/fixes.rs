//! A scenario's list of attempts and the verdict the check must give each: `fixes/*.toml`.
//!
//! Every scenario keeps, in its own folder, the untouched broken service, the solution,
//! another correct fix and the tempting wrong fixes, each as a small recipe on top of
//! `service/` or `solution/` (files removed, text replaced once, files written) with what the
//! check table must say (line verdicts, words the row shows, words its hint gives). The golden
//! test runs every one of them (`sdlab check <id> --fix <name>`), so a scenario carries its
//! own regression list, and a check that a wrong fix fools fails the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What an attempt is, which fixes the verdict the check must give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FixKind {
    /// The untouched `service/`: must fail.
    Broken,
    /// `solution/`: must pass every line.
    Solution,
    /// Another right fix: must pass every line.
    Correct,
    /// A tempting wrong fix: must fail, with a hint that names what it did wrong.
    Wrong,
}

impl FixKind {
    /// Whether the whole check must pass.
    pub fn must_pass(self) -> bool {
        matches!(self, FixKind::Solution | FixKind::Correct)
    }
}

/// The code an attempt starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FixBase {
    Service,
    Solution,
}

impl FixBase {
    fn dir(self, scenario_dir: &Path) -> PathBuf {
        scenario_dir.join(match self {
            FixBase::Service => "service",
            FixBase::Solution => "solution",
        })
    }
}

/// Replace `find` (which must occur exactly once) by `replace` in `file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixEdit {
    pub file: String,
    pub find: String,
    pub replace: String,
}

/// Add or overwrite a whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixWrite {
    pub file: String,
    pub text: String,
}

/// Take one file from the other code folder, e.g. the solution's `src/main.rs` on top of
/// the broken service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixCopy {
    pub file: String,
    pub from: FixBase,
}

/// What the check table must say about one line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixExpect {
    /// The line's label as printed (prefix match).
    pub line: String,
    /// `PASS` or `FAIL`.
    pub result: LineVerdict,
    /// Texts the table row must contain.
    #[serde(default)]
    pub shows: Vec<String>,
    /// Text the printed hint for this line must contain.
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LineVerdict {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "FAIL")]
    Fail,
}

/// One `fixes/<name>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    #[serde(skip)]
    pub name: String,
    pub about: String,
    pub kind: FixKind,
    from: Option<FixBase>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub edit: Vec<FixEdit>,
    #[serde(default)]
    pub write: Vec<FixWrite>,
    #[serde(default)]
    pub copy: Vec<FixCopy>,
    #[serde(default)]
    pub expect: Vec<FixExpect>,
    /// `load = false`: a wrong fix whose verdict rests on lines judged without the check
    /// load (answers, plans, pool settings); its golden test runs `sdlab check --no-load`,
    /// ~12 s faster, and fails if an expected line needed the load after all.
    #[serde(default = "yes")]
    pub load: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Fix {
    /// The code it starts from: `service/` for the broken one, `solution/` otherwise, unless
    /// `from` says.
    pub fn base(&self) -> FixBase {
        self.from.unwrap_or(match self.kind {
            FixKind::Broken => FixBase::Service,
            _ => FixBase::Solution,
        })
    }

    /// The folder the attempt starts from: the scenario's `service/` or `solution/`.
    pub fn base_dir(&self, scenario_dir: &Path) -> PathBuf {
        self.base().dir(scenario_dir)
    }

    /// Applies the recipe to `into`, a copy of the base (`workspace::materialize_fix` makes
    /// it): files removed, copied from the other folder, edited once, written.
    pub fn apply_to(&self, scenario_dir: &Path, into: &Path) -> Result<(), FixError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| FixError::Io { what, path, source }
        };
        for file in &self.remove {
            let path = confined(into, file, &self.name)?;
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
        }
        for c in &self.copy {
            let src = confined(&c.from.dir(scenario_dir), &c.file, &self.name)?;
            let dst = confined(into, &c.file, &self.name)?;
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).map_err(io("create", parent))?;
            }
            std::fs::copy(&src, &dst).map_err(io("copy", &src))?;
            crate::freshness::keep_mtime(&src, &dst);
        }
        for e in &self.edit {
            let path = confined(into, &e.file, &self.name)?;
            let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
            let edited = replace_once(&text, &e.find, &e.replace).ok_or_else(|| {
                self.invalid(format!(
                    "edit of {}: {:?} must occur exactly once (found {} times)",
                    e.file,
                    e.find,
                    text.matches(&e.find).count()
                ))
            })?;
            std::fs::write(&path, edited).map_err(io("write", &path))?;
        }
        for w in &self.write {
            let path = confined(into, &w.file, &self.name)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io("create", parent))?;
            }
            std::fs::write(&path, &w.text).map_err(io("write", &path))?;
        }
        Ok(())
    }

    fn invalid(&self, message: String) -> FixError {
        FixError::Invalid {
            path: PathBuf::from(format!("fixes/{}.toml", self.name)),
            message,
        }
    }
}

/// Every `fixes/*.toml` of a scenario, by name (none when the folder is missing).
pub fn load_fixes(scenario_dir: &Path) -> Result<BTreeMap<String, Fix>, FixError> {
    let dir = scenario_dir.join("fixes");
    let mut fixes = BTreeMap::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fixes),
        Err(source) => {
            return Err(FixError::Io {
                what: "read",
                path: dir,
                source,
            })
        }
    };
    for entry in entries {
        let path = entry
            .map_err(|source| FixError::Io {
                what: "read",
                path: dir.clone(),
                source,
            })?
            .path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let invalid = |message: String| FixError::Invalid {
            path: path.clone(),
            message,
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                "a fix's file name must be lowercase letters, digits and '-'".into(),
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| FixError::Io {
            what: "read",
            path: path.clone(),
            source,
        })?;
        let mut fix: Fix = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        fix.name = name.clone();
        fixes.insert(name, fix);
    }
    Ok(fixes)
}

/// One fix by name, with the names that exist when it is not one of them.
pub fn find_fix(scenario_dir: &Path, name: &str) -> Result<Fix, FixError> {
    let mut fixes = load_fixes(scenario_dir)?;
    fixes.remove(name).ok_or_else(|| FixError::Invalid {
        path: scenario_dir.join("fixes"),
        message: format!(
            "no fix named {name:?}; there are: {}",
            fixes.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    })
}

/// Everything wrong with a scenario's `fixes/` that can be seen without running it: each
/// problem as one line naming the file.
pub fn lint_fixes(scenario_dir: &Path) -> Vec<String> {
    let fixes = match load_fixes(scenario_dir) {
        Ok(f) => f,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = Vec::new();
    for (kind, what) in [
        (FixKind::Broken, "the untouched service (kind = \"broken\")"),
        (FixKind::Solution, "the solution (kind = \"solution\")"),
        (FixKind::Correct, "another correct fix (kind = \"correct\")"),
        (FixKind::Wrong, "a tempting wrong fix (kind = \"wrong\")"),
    ] {
        if !fixes.values().any(|f| f.kind == kind) {
            problems.push(format!(
                "{}: fixes/ has no file for {what}",
                scenario_dir.display()
            ));
        }
    }
    for fix in fixes.values() {
        let at = format!("{}/fixes/{}.toml", scenario_dir.display(), fix.name);
        if fix.about.trim().is_empty() {
            problems.push(format!("{at}: `about` is empty"));
        }
        if fix.kind == FixKind::Wrong
            && !fix
                .expect
                .iter()
                .any(|e| e.result == LineVerdict::Fail && e.hint.is_some())
        {
            problems.push(format!(
                "{at}: a wrong fix needs an [[expect]] with result = \"FAIL\" and the `hint` it must get"
            ));
        }
        if !fix.load && fix.kind != FixKind::Wrong {
            problems.push(format!(
                "{at}: only a wrong fix may skip the load (load = false): the broken service, the solution and the correct fixes get the whole check"
            ));
        }
        if fix.kind.must_pass() && fix.expect.iter().any(|e| e.result == LineVerdict::Fail) {
            problems.push(format!("{at}: a {:?} fix must pass every line", fix.kind));
        }
        let base = fix.base_dir(scenario_dir);
        for file in &fix.remove {
            if !base.join(file).is_file() {
                problems.push(format!(
                    "{at}: remove {file:?}: no such file in {}",
                    base.display()
                ));
            }
        }
        for c in &fix.copy {
            if !c.from.dir(scenario_dir).join(&c.file).is_file() {
                problems.push(format!(
                    "{at}: copy {:?}: no such file in {:?}",
                    c.file, c.from
                ));
            }
        }
        for e in &fix.edit {
            if fix.copy.iter().any(|c| c.file == e.file) {
                continue;
            }
            match std::fs::read_to_string(base.join(&e.file)) {
                Ok(text) if text.matches(&e.find).count() == 1 => {}
                Ok(text) => problems.push(format!(
                    "{at}: edit of {}: {:?} occurs {} times, must be once",
                    e.file,
                    e.find,
                    text.matches(&e.find).count()
                )),
                Err(err) => problems.push(format!("{at}: edit of {}: {err}", e.file)),
            }
        }
    }
    problems
}

fn replace_once(text: &str, find: &str, replace: &str) -> Option<String> {
    (!find.is_empty() && text.matches(find).count() == 1).then(|| text.replacen(find, replace, 1))
}

/// `file` inside `root`: relative, without `..`.
fn confined(root: &Path, file: &str, fix: &str) -> Result<PathBuf, FixError> {
    let rel = Path::new(file);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(FixError::Invalid {
            path: PathBuf::from(format!("fixes/{fix}.toml")),
            message: format!("{file:?} must be a relative path inside the code folder"),
        });
    }
    Ok(root.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_once_refuses_missing_and_repeated_text() {
        assert_eq!(replace_once("a b", "b", "c").as_deref(), Some("a c"));
        assert_eq!(replace_once("a b b", "b", "c"), None);
        assert_eq!(replace_once("a", "b", "c"), None);
        assert_eq!(replace_once("a", "", "c"), None);
    }

    #[test]
    fn paths_outside_the_code_folder_are_refused() {
        let root = Path::new("/tmp/x");
        assert!(confined(root, "src/main.rs", "f").is_ok());
        for bad in ["../x", "/etc/passwd", "src/../../x", "./x"] {
            assert!(confined(root, bad, "f").is_err(), "{bad}");
        }
    }
}
