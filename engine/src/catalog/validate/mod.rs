//! Turns a `RawScenario` into a `Scenario`: checks references between sections, units and
//! ranges, and names the file, the field and what was expected when something is wrong.
//!
//! The load section (`[[requests]]`, `[profiles.*]`) is checked in `load`, the check lines
//! (`[check]`) in `check`, workers and the queue's lines in `queue`; the rest of the file (identity, topology, panels) here.

mod check;
mod fault;
mod lessons;
mod load;
mod queue;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::RawScenario;
use super::{
    parse_duration, CatalogError, CheckLine, DbSeed, DependencySpec, LearningStage, NginxSpec,
    PostgresSpec, RedisSpec, Scenario, Topology,
};

/// Collects the file being validated so each error can name it.
struct Ctx<'a> {
    file: &'a Path,
    dir: PathBuf,
}

impl Ctx<'_> {
    fn invalid(&self, field: impl Into<String>, expected: impl Into<String>) -> CatalogError {
        CatalogError::Invalid {
            path: self.file.to_path_buf(),
            field: field.into(),
            expected: expected.into(),
        }
    }

    fn duration(&self, field: &str, text: &str) -> Result<Duration, CatalogError> {
        match parse_duration(text) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(self.invalid(
                field,
                format!("a positive duration such as \"250ms\" or \"30s\", got {text:?}"),
            )),
        }
    }

    /// A file named relative to the scenario folder that must exist.
    fn existing_file(&self, field: &str, rel: &str) -> Result<PathBuf, CatalogError> {
        let path = self.dir.join(rel);
        if path.is_file() {
            Ok(path)
        } else {
            Err(self.invalid(
                field,
                format!(
                    "a file relative to the scenario folder; {} does not exist",
                    path.display()
                ),
            ))
        }
    }
}

pub(super) fn validate(file: &Path, mut raw: RawScenario) -> Result<Scenario, CatalogError> {
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let cx = Ctx { file, dir };

    if !is_id(&raw.id) {
        return Err(cx.invalid(
            "id",
            format!("t<track>-<nn> such as \"t1-01\", got {:?}", raw.id),
        ));
    }
    if let Some(folder) = cx.dir.file_name().and_then(|n| n.to_str()) {
        if folder != raw.id && !folder.starts_with(&format!("{}-", raw.id)) {
            return Err(cx.invalid(
                "id",
                format!(
                    "the folder name to start with the id; folder {folder:?} vs id {:?}",
                    raw.id
                ),
            ));
        }
    }
    if raw.title.trim().is_empty() {
        return Err(cx.invalid("title", "a non-empty title"));
    }
    if !(1..=2).contains(&raw.track) {
        return Err(cx.invalid("track", format!("1 or 2, got {}", raw.track)));
    }
    let stage = match raw.stage.as_str() {
        "crawling" => LearningStage::Crawling,
        "walking" => LearningStage::Walking,
        "running" => LearningStage::Running,
        "sprinting" => LearningStage::Sprinting,
        other => {
            return Err(cx.invalid(
                "stage",
                format!("one of crawling, walking, running, sprinting; got {other:?}"),
            ))
        }
    };
    if raw.minutes == 0 {
        return Err(cx.invalid("minutes", "the expected working time in minutes, above 0"));
    }
    if raw.topology.instances == 0 || raw.topology.instances > 8 {
        return Err(cx.invalid(
            "topology.instances",
            format!("between 1 and 8, got {}", raw.topology.instances),
        ));
    }
    let postgres = match raw.topology.postgres {
        None => None,
        Some(pg) => {
            if !is_identifier(&pg.database) {
                return Err(cx.invalid(
                    "topology.postgres.database",
                    format!("a lower-case SQL identifier, got {:?}", pg.database),
                ));
            }
            let mut settings = BTreeMap::new();
            for (key, value) in pg.settings {
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_string(),
                    _ => {
                        return Err(cx.invalid(
                            format!("topology.postgres.settings.{key}"),
                            "a string, number or boolean",
                        ))
                    }
                };
                if !is_identifier(&key) {
                    return Err(cx.invalid(
                        format!("topology.postgres.settings.{key}"),
                        "a postgresql.conf parameter name",
                    ));
                }
                settings.insert(key, text);
            }
            if pg.replicas > 1 {
                return Err(cx.invalid(
                    "topology.postgres.replicas",
                    format!("0 or 1 streaming replicas, got {}", pg.replicas),
                ));
            }
            let replica_apply_delay = match &pg.replica_apply_delay {
                Some(text) => {
                    let delay = cx.duration("topology.postgres.replica_apply_delay", text)?;
                    if delay > Duration::from_secs(60) {
                        return Err(cx.invalid(
                            "topology.postgres.replica_apply_delay",
                            format!("at most 60s, got {text:?}"),
                        ));
                    }
                    delay
                }
                None => Duration::ZERO,
            };
            if pg.replica_apply_delay.is_some() && pg.replicas == 0 {
                return Err(cx.invalid(
                    "topology.postgres.replica_apply_delay",
                    "only with replicas = 1",
                ));
            }
            for (field, cpus) in [
                ("topology.postgres.cpus", pg.cpus),
                ("topology.postgres.replica_cpus", pg.replica_cpus),
            ] {
                if let Some(c) = cpus {
                    if !(0.05..=4.0).contains(&c) {
                        return Err(cx.invalid(field, format!("between 0.05 and 4 cores, got {c}")));
                    }
                }
            }
            if pg.replica_cpus.is_some() && pg.replicas == 0 {
                return Err(cx.invalid("topology.postgres.replica_cpus", "only with replicas = 1"));
            }
            Some(PostgresSpec {
                database: pg.database,
                settings,
                replicas: pg.replicas,
                replica_apply_delay,
                cpus: pg.cpus,
                replica_cpus: pg.replica_cpus,
            })
        }
    };
    let dependency = match raw.topology.dependency {
        None => None,
        Some(dep) => {
            if !is_identifier(&dep.name) {
                return Err(cx.invalid(
                    "topology.dependency.name",
                    format!("a lower-case name such as \"payments\", got {:?}", dep.name),
                ));
            }
            let env_ok = dep.env.starts_with(|c: char| c.is_ascii_uppercase())
                && dep
                    .env
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let reserved = [
                "PORT",
                "DATABASE_URL",
                "DATABASE_REPLICA_URL",
                "INSTANCE_ID",
                "REDIS_URL",
                "RUST_LOG",
            ];
            if !env_ok || reserved.contains(&dep.env.as_str()) {
                return Err(cx.invalid(
                    "topology.dependency.env",
                    format!(
                        "an upper-case environment variable name such as \"PAYMENTS_URL\" (not one of {}), got {:?}",
                        reserved.join(", "),
                        dep.env
                    ),
                ));
            }
            let latency = cx.duration("topology.dependency.latency", &dep.latency)?;
            if latency > Duration::from_secs(10) {
                return Err(cx.invalid("topology.dependency.latency", "at most 10s"));
            }
            if dep.key.as_deref().is_some_and(|k| !is_identifier(k)) {
                return Err(cx.invalid(
                    "topology.dependency.key",
                    format!("a JSON field name such as \"job_id\", got {:?}", dep.key),
                ));
            }
            Some(DependencySpec {
                name: dep.name,
                env: dep.env,
                latency,
                key: dep.key,
                idempotency_header: queue::idempotency_header(&cx, dep.idempotency_header)?,
            })
        }
    };
    let db = match raw.db {
        None => None,
        Some(db) => {
            if postgres.is_none() {
                return Err(cx.invalid("db", "a [topology.postgres] section to seed into"));
            }
            Some(DbSeed {
                schema: cx.existing_file("db.schema", &db.schema)?,
                seed: db
                    .seed
                    .map(|s| cx.existing_file("db.seed", &s))
                    .transpose()?,
            })
        }
    };

    let redis = match raw.topology.redis {
        None => None,
        Some(r) => {
            let maxmemory = match &r.maxmemory {
                None => None,
                Some(text) => Some(size(text).ok_or_else(|| {
                    cx.invalid(
                        "topology.redis.maxmemory",
                        format!("a size such as \"2mb\", \"512kb\" or \"1gb\" (at least 1mb), got {text:?}"),
                    )
                })?),
            };
            if let Some(policy) = &r.policy {
                if !redis_server_embedded::POLICIES.contains(&policy.as_str()) {
                    return Err(cx.invalid(
                        "topology.redis.policy",
                        format!(
                            "one of Redis's maxmemory policies ({}), got {policy:?}",
                            redis_server_embedded::POLICIES.join(", ")
                        ),
                    ));
                }
            }
            let config = match &r.config {
                None => None,
                Some(path) => {
                    let p = Path::new(path);
                    if p.is_absolute()
                        || p.components()
                            .any(|c| matches!(c, std::path::Component::ParentDir))
                        || !cx.dir.join("service").join(p).is_file()
                    {
                        return Err(cx.invalid(
                            "topology.redis.config",
                            format!("a file that exists in service/, such as \"deploy/redis.conf\", got {path:?}"),
                        ));
                    }
                    Some(p.to_path_buf())
                }
            };
            Some(RedisSpec {
                maxmemory,
                policy: r.policy,
                persistence: r.persistence,
                config,
            })
        }
    };
    let (requests, oracles) =
        load::requests(&cx, raw.requests, postgres.is_some(), raw.sessions.as_ref())?;
    let sessions = raw.sessions.as_ref().and_then(|s| {
        Some(crate::load::SessionSpec {
            login: requests.iter().find(|r| r.name == s.login)?.clone(),
            users: s.users,
            token: s.token.clone(),
        })
    });
    let mut profiles = BTreeMap::new();
    for (name, profile) in raw.profiles {
        let profile = load::profile(&cx, &name, profile, &requests)?;
        profiles.insert(name, profile);
    }
    let cpus_per_instance = match raw.topology.cpus_per_instance {
        Some(c) if !(0.05..=4.0).contains(&c) => {
            return Err(cx.invalid(
                "topology.cpus_per_instance",
                format!("between 0.05 and 4 cores, got {c}"),
            ));
        }
        c => c,
    };
    let nginx = match raw.topology.nginx {
        None => None,
        Some(n) => {
            for (field, path) in [
                ("topology.nginx.config", &n.config),
                ("topology.nginx.instances_file", &n.instances_file),
            ] {
                let p = Path::new(path);
                if p.is_absolute()
                    || p.components()
                        .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    return Err(cx.invalid(field, format!("a path inside the service folder such as \"deploy/nginx.conf\", got {path:?}")));
                }
                if !cx.dir.join("service").join(p).is_file() {
                    return Err(cx.invalid(
                        field,
                        format!("a file that exists in service/, but service/{path} does not"),
                    ));
                }
            }
            if n.max_instances == 0 || n.max_instances > 8 {
                return Err(cx.invalid(
                    "topology.nginx.max_instances",
                    format!("between 1 and 8, got {}", n.max_instances),
                ));
            }
            Some(NginxSpec {
                config: n.config.into(),
                instances_file: n.instances_file.into(),
                max_instances: n.max_instances,
            })
        }
    };
    let workers = queue::workers(&cx, raw.topology.workers)?;
    let queue_raw = queue::take(&mut raw.check);
    let fault_raw = raw.check.dependency_fault.take();
    let mut check = check::check(
        &cx,
        raw.check,
        &profiles,
        &requests,
        postgres.is_some(),
        redis.is_some(),
    )?;
    let counts_calls = check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::DependencyCalls { .. }));
    let propagates = check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::RequestIdsPropagated { .. }));
    if propagates && dependency.is_none() {
        return Err(cx.invalid(
            "check.request_ids.propagated",
            "a [topology.dependency] whose calls carry the IDs (the scenario has none)",
        ));
    }
    let reads_replica = check.lines.iter().any(|l| {
        matches!(
            l,
            CheckLine::ReplicaReads { .. } | CheckLine::PrimaryReads { .. }
        )
    });
    if reads_replica && postgres.as_ref().is_none_or(|p| p.replicas == 0) {
        return Err(cx.invalid(
            "check.replica_reads",
            "a [topology.postgres] with replicas = 1 (a replica to measure)",
        ));
    }
    if counts_calls && dependency.as_ref().and_then(|d| d.key.as_ref()).is_none() {
        return Err(cx.invalid(
            "check.dependency_calls",
            "a [topology.dependency] with a key (the JSON field the stub counts calls by)",
        ));
    }
    if check.kill_instance_at.is_some() && nginx.is_none() {
        return Err(cx.invalid(
            "check.kill_instance_at",
            "a [topology.nginx] in front of the instances: without a balancer the load (and the \
             answers check) would keep going to the killed instance",
        ));
    }
    queue::check(
        &cx,
        queue_raw,
        &mut check,
        postgres.is_some(),
        redis.is_some(),
    )?;
    fault::dependency_fault(&cx, fault_raw, &mut check, dependency.as_ref())?;
    // Every check judges the answers, whatever else it measures.
    check.lines.insert(0, CheckLine::Answers);
    if raw.topology.instances > 1 || nginx.is_some() {
        check.lines.insert(
            0,
            CheckLine::InstancesUp {
                hint: "An instance stopped answering: it crashed or was killed. Its log \
                       (<lab home>/logs/<id>/service-N.log) says why; restart the lab."
                    .to_string(),
            },
        );
    }

    for (i, hint) in raw.hints.iter().enumerate() {
        if hint.trim().is_empty() {
            return Err(cx.invalid(format!("hints[{i}]"), "a non-empty hint"));
        }
    }

    let panels = panels(&cx, raw.panels)?;
    Ok(Scenario {
        id: raw.id,
        dir: cx.dir.clone(),
        title: raw.title,
        track: raw.track,
        stage,
        concepts: raw.concepts,
        minutes: raw.minutes,
        topology: Topology {
            instances: raw.topology.instances,
            postgres,
            dependency,
            cpus_per_instance,
            nginx,
            redis,
            workers,
        },
        db,
        profiles,
        check,
        hints: raw.hints,
        panels,
        oracles,
        sessions,
    })
}

/// `"2mb"` -> 2 MiB in bytes, as Redis reads sizes (k/kb, m/mb, g/gb: powers of 1024); at
/// least 1 MiB (Redis refuses less).
fn size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor).filter(|&b| b >= 1 << 20)
}

/// The highest instance number a panel series may name.
const MAX_PANEL_INSTANCE: u32 = 8;

fn panels(cx: &Ctx, raw: Vec<super::raw::RawPanel>) -> Result<Vec<super::Panel>, CatalogError> {
    let metric_name = |m: &str| {
        !m.is_empty()
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !m.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut out = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        if p.title.trim().is_empty() {
            return Err(cx.invalid(format!("panels[{i}].title"), "a non-empty title"));
        }
        if p.series.is_empty() {
            return Err(cx.invalid(format!("panels[{i}].series"), "at least one series"));
        }
        let mut series = Vec::new();
        for (j, s) in p.series.into_iter().enumerate() {
            if !metric_name(&s.metric) {
                return Err(cx.invalid(
                    format!("panels[{i}].series[{j}].metric"),
                    format!(
                        "a Prometheus metric name such as \"db_pool_waiting\", got {:?}",
                        s.metric
                    ),
                ));
            }
            // The learner may run more instances than the topology starts with (t1-04's
            // deploy/lab.toml), so the bound is the lab's ceiling, not topology.instances.
            if s.instance.is_some_and(|n| n == 0 || n > MAX_PANEL_INSTANCE) {
                return Err(cx.invalid(
                    format!("panels[{i}].series[{j}].instance"),
                    format!("an instance between 1 and {MAX_PANEL_INSTANCE}"),
                ));
            }
            series.push(super::PanelSeries {
                label: s.label,
                metric: s.metric,
                rate: s.rate,
                instance: s.instance,
            });
        }
        out.push(super::Panel {
            title: p.title,
            unit: p.unit,
            series,
        });
    }
    Ok(out)
}

/// A scenario id: `t<track>-<two digits>`, e.g. `t1-04` (also what `sdlab new` accepts).
pub(crate) fn is_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 5
        && b[0] == b't'
        && b[1].is_ascii_digit()
        && b[2] == b'-'
        && b[3].is_ascii_digit()
        && b[4].is_ascii_digit()
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The `{name}` placeholders in a template.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| {
        let end = rest.find('}')?;
        let name = &rest[..end];
        (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then_some(name)
    })
}
