//! The learner's deploy files: how many instances to run (`instances = N` in a small TOML
//! file) and the nginx config in front of them, where `{{instance_N}}` stands for the
//! address of instance N. Read at every start, so an edit applies on the next start.
//!
//! The lab substitutes only what it must: instance addresses here, and `{{listen}}` in
//! `sdlab-embedded-nginx`. Everything else in the nginx config is the learner's.

use std::path::{Path, PathBuf};

use crate::catalog::NginxSpec;

/// What the learner's deploy files ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub instances: u32,
    /// The nginx config as written, placeholders still in.
    pub nginx_site: String,
    /// Where the config came from (for error messages).
    pub nginx_file: PathBuf,
}

/// A deploy file that cannot be used, with what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct DeployError {
    pub file: PathBuf,
    pub message: String,
}

/// Reads and checks the deploy files of the service in `code_dir`.
pub fn read(code_dir: &Path, spec: &NginxSpec) -> Result<Deploy, DeployError> {
    let instances_file = code_dir.join(&spec.instances_file);
    let err = |file: &Path, message: String| DeployError {
        file: file.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(&instances_file).map_err(|e| {
        err(
            &instances_file,
            format!("cannot read it ({e}); it should hold a line `instances = 1`"),
        )
    })?;
    let value: toml::Table = toml::from_str(&text)
        .map_err(|e| err(&instances_file, format!("not valid TOML: {}", e.message())))?;
    let instances = match value.get("instances") {
        Some(toml::Value::Integer(n)) if (1..=i64::from(spec.max_instances)).contains(n) => {
            *n as u32
        }
        Some(v) => {
            return Err(err(
                &instances_file,
                format!(
                    "`instances` must be a whole number from 1 to {}, got {v}",
                    spec.max_instances
                ),
            ))
        }
        None => return Err(err(&instances_file, "missing `instances = N`".to_string())),
    };
    if let Some(key) = value.keys().find(|k| *k != "instances") {
        return Err(err(
            &instances_file,
            format!("unknown setting `{key}` (only `instances` is read)"),
        ));
    }
    let nginx_file = code_dir.join(&spec.config);
    let nginx_site = std::fs::read_to_string(&nginx_file)
        .map_err(|e| err(&nginx_file, format!("cannot read it ({e})")))?;
    for n in placeholders(&nginx_site) {
        if n == 0 || n > instances {
            return Err(err(
                &nginx_file,
                format!(
                    "names {{{{instance_{n}}}}}, but {} runs {instances} instance(s): use {{{{instance_1}}}} to {{{{instance_{instances}}}}}, or raise `instances`",
                    spec.instances_file.display()
                ),
            ));
        }
    }
    Ok(Deploy {
        instances,
        nginx_site,
        nginx_file,
    })
}

/// The Redis settings a learner may choose (`[topology.redis] config`), in redis.conf's
/// syntax (`directive value`, `#` comments). Only the eviction policy: maxmemory is the size
/// of the plan the scenario pays for, and the rest is the lab's (port, dir, persistence).
/// Returns the `maxmemory-policy`, if the file sets one.
pub fn read_redis(code_dir: &Path, file: &Path) -> Result<Option<String>, DeployError> {
    let path = code_dir.join(file);
    let err = |message: String| DeployError {
        file: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        err(format!(
            "cannot read it ({e}); it may hold a line such as `maxmemory-policy allkeys-lru`"
        ))
    })?;
    let mut policy = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let directive = words.next().unwrap_or_default().to_ascii_lowercase();
        let value: Vec<&str> = words.collect();
        match (directive.as_str(), value.as_slice()) {
            ("maxmemory-policy", [p]) if redis_server_embedded::POLICIES.contains(p) => {
                policy = Some((*p).to_string());
            }
            ("maxmemory-policy", _) => {
                return Err(err(format!(
                    "line {}: `maxmemory-policy` takes one of {}",
                    n + 1,
                    redis_server_embedded::POLICIES.join(", ")
                )))
            }
            ("maxmemory", _) => {
                return Err(err(format!(
                    "line {}: `maxmemory` is the size of the Redis plan this scenario runs on and stays as it is; choose what Redis does when it is full with `maxmemory-policy`",
                    n + 1
                )))
            }
            (other, _) => {
                return Err(err(format!(
                    "line {}: `{other}` is not a setting this lab lets you change (only `maxmemory-policy`)",
                    n + 1
                )))
            }
        }
    }
    Ok(policy)
}

/// The numbers N of every `{{instance_N}}` in `text`.
fn placeholders(text: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{instance_") {
        rest = &rest[i + "{{instance_".len()..];
        if let Some(end) = rest.find("}}") {
            if let Ok(n) = rest[..end].parse() {
                found.push(n);
            }
        }
    }
    found
}

/// The config with `{{instance_N}}` replaced by `127.0.0.1:<port of instance N>`.
pub fn render(site: &str, ports: &[u16]) -> String {
    let mut text = site.to_string();
    // Highest first, so {{instance_1}} never matches inside {{instance_10}}.
    for (i, port) in ports.iter().enumerate().rev() {
        text = text.replace(
            &format!("{{{{instance_{}}}}}", i + 1),
            &format!("127.0.0.1:{port}"),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NginxSpec {
        NginxSpec {
            config: "deploy/nginx.conf".into(),
            instances_file: "deploy/lab.toml".into(),
            max_instances: 4,
        }
    }

    fn dir_with(lab: &str, nginx: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("deploy")).unwrap();
        std::fs::write(dir.path().join("deploy/lab.toml"), lab).unwrap();
        std::fs::write(dir.path().join("deploy/nginx.conf"), nginx).unwrap();
        dir
    }

    fn redis_conf(text: &str) -> Result<Option<String>, DeployError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis.conf"), text).unwrap();
        read_redis(dir.path(), Path::new("redis.conf"))
    }

    #[test]
    fn the_learners_redis_file_chooses_only_the_eviction_policy() {
        assert_eq!(
            redis_conf("# the plan's policy\nmaxmemory-policy allkeys-lru\n").unwrap(),
            Some("allkeys-lru".to_string())
        );
        assert_eq!(redis_conf("# nothing chosen yet\n").unwrap(), None);
        let bigger = redis_conf("maxmemory 1gb\n").unwrap_err();
        assert!(
            bigger.message.contains("size of the Redis plan"),
            "{bigger}"
        );
        let port = redis_conf("port 6380\n").unwrap_err();
        assert!(port.message.contains("`port` is not a setting"), "{port}");
        let typo = redis_conf("maxmemory-policy allkeys-lrú\n").unwrap_err();
        assert!(typo.message.contains("allkeys-lru"), "{typo}");
    }

    #[test]
    fn instance_placeholders_become_their_addresses() {
        let dir = dir_with(
            "instances = 2\n",
            "upstream a { server {{instance_1}}; server {{instance_2}}; }",
        );
        let deploy = read(dir.path(), &spec()).unwrap();
        assert_eq!(deploy.instances, 2);
        assert_eq!(
            render(&deploy.nginx_site, &[7001, 7002]),
            "upstream a { server 127.0.0.1:7001; server 127.0.0.1:7002; }"
        );
    }

    #[test]
    fn an_instance_beyond_the_count_is_an_error_that_says_what_to_change() {
        let dir = dir_with("instances = 2\n", "server {{instance_3}};");
        let err = read(dir.path(), &spec()).unwrap_err();
        assert!(
            err.message.contains("{{instance_3}}") && err.message.contains("runs 2 instance(s)"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_instance_count_names_the_file_and_the_range() {
        for lab in [
            "instances = 0",
            "instances = 9",
            "instances = \"two\"",
            "",
            "instance = 2",
        ] {
            let dir = dir_with(lab, "");
            let err = read(dir.path(), &spec()).unwrap_err();
            assert!(err.file.ends_with("deploy/lab.toml"), "{err}");
        }
        let err = read(dir_with("instances = 5", "").path(), &spec()).unwrap_err();
        assert!(err.message.contains("from 1 to 4"), "{err}");
    }
}
