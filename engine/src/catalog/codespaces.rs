//! The "Open in Codespaces" address of a scenario: GitHub's `codespaces.new` link for the
//! repository the lab is published in, with the scenario's own configuration
//! (`.devcontainer/<id>/devcontainer.json`, see `devcontainer`). Only when the repository is
//! configured: `$SDLAB_REPOSITORY`, else `repository` under `[workspace.package]` in the
//! sources' Cargo.toml (a fork sets its own). Without it the UI shows no link.

use std::path::Path;

/// The configured GitHub repository as `OWNER/NAME`, if any (see the module doc).
pub fn repository(manifest: &Path) -> Option<String> {
    if let Some(configured) = std::env::var("SDLAB_REPOSITORY")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return github_name(&configured);
    }
    let text = std::fs::read_to_string(manifest).ok()?;
    let value: toml::Value = toml::from_str(&text).ok()?;
    let url = value
        .get("workspace")?
        .get("package")?
        .get("repository")?
        .as_str()?;
    github_name(url)
}

/// `OWNER/NAME` of a GitHub repository given as `https://github.com/OWNER/NAME[.git][/]`,
/// `git@github.com:OWNER/NAME.git` or `OWNER/NAME`; None for anything else (another host: no
/// Codespaces there).
pub fn github_name(repository: &str) -> Option<String> {
    let r = repository.trim();
    let path = r
        .strip_prefix("https://github.com/")
        .or_else(|| r.strip_prefix("http://github.com/"))
        .or_else(|| r.strip_prefix("git@github.com:"))
        .unwrap_or(if r.contains(':') { "" } else { r });
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut parts = path.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    let fine = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (parts.next().is_none() && fine(owner) && fine(name)).then(|| format!("{owner}/{name}"))
}

/// The link that creates a codespace of `repository` (`OWNER/NAME`) for scenario `id`.
pub fn url(repository: &str, id: &str) -> String {
    format!(
        "https://codespaces.new/{repository}?devcontainer_path=.devcontainer%2F{id}%2Fdevcontainer.json"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_github_repository_is_understood_in_each_way_it_is_written() {
        for written in [
            "https://github.com/acme/sdlab",
            "https://github.com/acme/sdlab.git",
            "https://github.com/acme/sdlab/",
            "git@github.com:acme/sdlab.git",
            "acme/sdlab",
        ] {
            assert_eq!(
                github_name(written).as_deref(),
                Some("acme/sdlab"),
                "{written}"
            );
        }
    }

    #[test]
    fn another_host_or_a_malformed_name_gives_no_link() {
        for written in [
            "https://gitlab.com/acme/sdlab",
            "https://github.com/acme",
            "https://github.com/acme/sdlab/tree/main",
            "acme/sd lab",
            "",
        ] {
            assert_eq!(github_name(written), None, "{written}");
        }
    }

    #[test]
    fn the_link_names_the_scenarios_own_configuration() {
        assert_eq!(
            url("acme/sdlab", "t1-05"),
            "https://codespaces.new/acme/sdlab?devcontainer_path=.devcontainer%2Ft1-05%2Fdevcontainer.json"
        );
    }

    #[test]
    fn the_repository_comes_from_the_workspace_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[workspace.package]\nrepository = \"https://github.com/acme/sdlab\"\n",
        )
        .unwrap();
        if std::env::var_os("SDLAB_REPOSITORY").is_none() {
            assert_eq!(repository(&manifest).as_deref(), Some("acme/sdlab"));
        }
        std::fs::write(&manifest, "[workspace.package]\nversion = \"0.0.0\"\n").unwrap();
        if std::env::var_os("SDLAB_REPOSITORY").is_none() {
            assert_eq!(repository(&manifest), None);
        }
    }
}
