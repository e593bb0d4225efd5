//! Turns a `RawScenario` into a `Scenario`: checks references between sections, units and
//! ranges, and names the file, the field and what was expected when something is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawCheck, RawParam, RawProfile, RawRequest, RawScenario};
use super::{
    parse_duration, CatalogError, CheckLine, CheckSpec, DbSeed, DependencySpec, LearningStage,
    NginxSpec, Percentile, PostgresSpec, Profile, Scenario, SloMetric, Topology,
};
use crate::load::{Method, ParamGen, RequestTemplate, Stage};

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

pub(super) fn validate(file: &Path, raw: RawScenario) -> Result<Scenario, CatalogError> {
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
            Some(PostgresSpec {
                database: pg.database,
                settings,
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
            Some(DependencySpec {
                name: dep.name,
                env: dep.env,
                latency,
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

    let requests = requests(&cx, raw.requests)?;
    let mut profiles = BTreeMap::new();
    for (name, profile) in raw.profiles {
        let profile = self::profile(&cx, &name, profile, &requests)?;
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
    let mut check = check(&cx, raw.check, &profiles, &requests, postgres.is_some())?;
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
        },
        db,
        profiles,
        check,
        hints: raw.hints,
        panels,
    })
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

fn requests(cx: &Ctx, raw: Vec<RawRequest>) -> Result<Vec<RequestTemplate>, CatalogError> {
    let mut out: Vec<RequestTemplate> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("requests[{i}].{f}");
        if r.name.trim().is_empty() || out.iter().any(|o| o.name == r.name) {
            return Err(cx.invalid(field("name"), format!("a unique name, got {:?}", r.name)));
        }
        let method = match r.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => {
                return Err(cx.invalid(
                    field("method"),
                    format!("GET, POST, PUT or DELETE, got {other:?}"),
                ))
            }
        };
        if !r.path.starts_with('/') {
            return Err(cx.invalid(
                field("path"),
                format!("a path starting with '/', got {:?}", r.path),
            ));
        }
        let mut params = BTreeMap::new();
        for (name, p) in r.params {
            let gen = match p {
                RawParam::Uniform([min, max]) if min <= max => ParamGen::Uniform { min, max },
                RawParam::Uniform(_) => {
                    return Err(cx.invalid(
                        field(&format!("params.{name}")),
                        "uniform = [min, max] with min <= max",
                    ))
                }
                RawParam::Zipf { n, s } if n > 0 && s > 0.0 => ParamGen::Zipf { n, s },
                RawParam::Zipf { .. } => {
                    return Err(cx.invalid(
                        field(&format!("params.{name}")),
                        "zipf = { n = <above 0>, s = <above 0> }",
                    ))
                }
                RawParam::Choice(v) if !v.is_empty() => ParamGen::Choice(v),
                RawParam::Choice(_) => {
                    return Err(cx.invalid(
                        field(&format!("params.{name}")),
                        "choice = [at least one value]",
                    ))
                }
                RawParam::Sequence(start) => ParamGen::Sequence { start },
            };
            params.insert(name, gen);
        }
        // Every {placeholder} in the path and body must have a generator.
        for text in std::iter::once(r.path.as_str()).chain(r.body.as_deref()) {
            for placeholder in placeholders(text) {
                if !params.contains_key(placeholder) {
                    return Err(cx.invalid(
                        field("params"),
                        format!("a generator for {{{placeholder}}} used in {text:?}"),
                    ));
                }
            }
        }
        out.push(RequestTemplate {
            name: r.name,
            weight: 0,
            method,
            path: r.path,
            body: r.body,
            params,
        });
    }
    Ok(out)
}

fn profile(
    cx: &Ctx,
    name: &str,
    raw: RawProfile,
    requests: &[RequestTemplate],
) -> Result<Profile, CatalogError> {
    let field = |f: &str| format!("profiles.{name}.{f}");
    let timeout = cx.duration(&field("timeout"), &raw.timeout)?;
    if raw.stages.is_empty() {
        return Err(cx.invalid(field("stages"), "at least one stage"));
    }
    let mut stages = Vec::new();
    let mut total = Duration::ZERO;
    for (i, s) in raw.stages.iter().enumerate() {
        let duration = cx.duration(&field(&format!("stages[{i}].duration")), &s.duration)?;
        // Saturating: two huge stages must fail the 10-minute bound below, not overflow.
        total = total.saturating_add(duration);
        let rate_ok = |r: f64| r.is_finite() && (0.0..=20_000.0).contains(&r);
        if !rate_ok(s.rate) || s.rate_from.is_some_and(|r| !rate_ok(r)) {
            return Err(cx.invalid(
                field(&format!("stages[{i}].rate")),
                "requests per second between 0 and 20000",
            ));
        }
        stages.push(Stage {
            duration,
            rate: s.rate,
            rate_from: s.rate_from,
        });
    }
    // Load the lab generates is bounded in time: ten minutes is plenty for any lesson.
    if total > Duration::from_secs(600) {
        return Err(cx.invalid(field("stages"), "a total duration of at most 10 minutes"));
    }
    let mut mix = Vec::new();
    for (req, weight) in raw.mix {
        let Some(template) = requests.iter().find(|r| r.name == req) else {
            return Err(cx.invalid(
                field(&format!("mix.{req}")),
                format!(
                    "the name of a [[requests]] entry ({})",
                    requests
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if weight > 0 {
            mix.push(RequestTemplate {
                weight,
                ..template.clone()
            });
        }
    }
    if mix.is_empty() {
        return Err(cx.invalid(field("mix"), "at least one request with a weight above 0"));
    }
    // The load generator refuses 0 slots; say so while loading, not when a check starts.
    if raw.max_in_flight == Some(0) {
        return Err(cx.invalid(field("max_in_flight"), "at least 1 request in flight"));
    }
    Ok(Profile {
        name: name.to_string(),
        description: raw.description,
        timeout,
        max_in_flight: raw.max_in_flight.unwrap_or(2_000),
        stages,
        mix,
    })
}

fn check(
    cx: &Ctx,
    raw: RawCheck,
    profiles: &BTreeMap<String, Profile>,
    requests: &[RequestTemplate],
    has_postgres: bool,
) -> Result<CheckSpec, CatalogError> {
    let Some(profile) = profiles.get(&raw.profile) else {
        return Err(cx.invalid(
            "check.profile",
            format!(
                "the name of a [profiles.<name>] section ({}), got {:?}",
                profiles.keys().cloned().collect::<Vec<_>>().join(", "),
                raw.profile
            ),
        ));
    };
    let mut lines = Vec::new();
    for (i, slo) in raw.slo.into_iter().enumerate() {
        let field = |f: &str| format!("check.slo[{i}].{f}");
        if slo.hint.trim().is_empty() {
            return Err(cx.invalid(field("hint"), "a hint for when the line fails"));
        }
        if let Some(req) = &slo.request {
            if !requests.iter().any(|r| &r.name == req) {
                return Err(cx.invalid(
                    field("request"),
                    format!("the name of a [[requests]] entry, got {req:?}"),
                ));
            }
        }
        let percentile = match slo.metric.as_str() {
            "p50" => Some(Percentile::P50),
            "p90" => Some(Percentile::P90),
            "p95" => Some(Percentile::P95),
            "p99" => Some(Percentile::P99),
            _ => None,
        };
        let metric = match (percentile, slo.metric.as_str()) {
            (Some(percentile), _) => {
                let max = match &slo.max {
                    Some(toml::Value::String(s)) => cx.duration(&field("max"), s)?,
                    _ => return Err(cx.invalid(field("max"), "a duration such as \"250ms\"")),
                };
                SloMetric::Latency { percentile, max }
            }
            (None, "error_rate") => {
                let max = match &slo.max {
                    Some(toml::Value::Float(f)) if (0.0..=1.0).contains(f) => *f,
                    Some(toml::Value::Integer(i @ 0..=1)) => *i as f64,
                    _ => {
                        return Err(
                            cx.invalid(field("max"), "a fraction between 0 and 1, e.g. 0.01")
                        )
                    }
                };
                SloMetric::ErrorRate { max }
            }
            (None, "achieved_rate") if slo.request.is_some() => {
                return Err(cx.invalid(
                    field("request"),
                    "no request: achieved_rate is judged on the whole run",
                ))
            }
            (None, "achieved_rate") => match slo.min_ratio {
                Some(r) if r > 0.0 && r <= 1.0 => SloMetric::AchievedRate { min_ratio: r },
                _ => {
                    return Err(cx.invalid(
                        field("min_ratio"),
                        "the fraction of the offered rate that must succeed, e.g. 0.95",
                    ))
                }
            },
            (None, other) => {
                return Err(cx.invalid(
                    field("metric"),
                    format!("one of p50, p90, p95, p99, error_rate, achieved_rate; got {other:?}"),
                ))
            }
        };
        lines.push(CheckLine::Slo {
            metric,
            request: slo.request,
            hint: slo.hint,
        });
    }
    for (i, plan) in raw.plan.into_iter().enumerate() {
        let field = |f: &str| format!("check.plan[{i}].{f}");
        if !has_postgres {
            return Err(cx.invalid(
                field("query"),
                "a [topology.postgres] section to run the query on",
            ));
        }
        if plan.query.trim().is_empty() || plan.hint.trim().is_empty() {
            return Err(cx.invalid(field("query"), "a query and a hint"));
        }
        // Plan results are keyed by name, so two lines may not share one.
        if lines
            .iter()
            .any(|l| matches!(l, CheckLine::Plan { name, .. } if *name == plan.name))
        {
            return Err(cx.invalid(
                field("name"),
                format!("a name unique among plan lines, got {:?}", plan.name),
            ));
        }
        if plan.uses_index_on.is_none() && !plan.no_sort && plan.max_buffers.is_none() {
            return Err(cx.invalid(
                field("uses_index_on"),
                "at least one of uses_index_on, no_sort = true, max_buffers",
            ));
        }
        if plan
            .uses_index_on
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(cx.invalid(field("uses_index_on"), "a table name"));
        }
        if plan.max_buffers == Some(0) {
            return Err(cx.invalid(field("max_buffers"), "a page count of at least 1"));
        }
        lines.push(CheckLine::Plan {
            name: plan.name,
            query: plan.query,
            uses_index_on: plan.uses_index_on,
            no_sort: plan.no_sort,
            max_buffers: plan.max_buffers,
            hint: plan.hint,
        });
    }
    if let Some(c) = raw.connections {
        // Written as a negated comparison so that NaN is rejected too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let bad = !(c.max_per_request >= 0.0);
        if !has_postgres || bad {
            return Err(cx.invalid(
                "check.connections.max_per_request",
                "a fraction of new connections per request, with [topology.postgres]",
            ));
        }
        if c.hint.trim().is_empty() {
            return Err(cx.invalid("check.connections.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::Connections {
            max_per_request: c.max_per_request,
            hint: c.hint,
        });
    }
    if let Some(m) = raw.metrics {
        if m.present.is_empty() {
            return Err(cx.invalid("check.metrics.present", "at least one metric name"));
        }
        if m.hint.trim().is_empty() {
            return Err(cx.invalid("check.metrics.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::MetricsPresent {
            names: m.present,
            hint: m.hint,
        });
    }
    if let Some(b) = raw.pool_budget {
        if !has_postgres {
            return Err(cx.invalid("check.pool_budget", "a [topology.postgres] section"));
        }
        if b.hint.trim().is_empty() {
            return Err(cx.invalid("check.pool_budget.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::PoolBudget {
            reserved: b.reserved,
            hint: b.hint,
        });
    }
    if let Some(r) = raw.refused_connections {
        if !has_postgres {
            return Err(cx.invalid("check.refused_connections", "a [topology.postgres] section"));
        }
        if r.hint.trim().is_empty() {
            return Err(cx.invalid(
                "check.refused_connections.hint",
                "a hint for when the line fails",
            ));
        }
        lines.push(CheckLine::RefusedConnections {
            max: r.max,
            hint: r.hint,
        });
    }
    if let Some(b) = raw.balance {
        if b.min_instances == 0 {
            return Err(cx.invalid("check.balance.min_instances", "at least 1"));
        }
        if !(b.tolerance > 0.0 && b.tolerance < 1.0) {
            return Err(cx.invalid(
                "check.balance.tolerance",
                format!(
                    "a fraction between 0 and 1 (0.2 = ±20%), got {}",
                    b.tolerance
                ),
            ));
        }
        if b.hint.trim().is_empty() {
            return Err(cx.invalid("check.balance.hint", "a hint for when the line fails"));
        }
        lines.push(CheckLine::Balance {
            min_instances: b.min_instances,
            tolerance: b.tolerance,
            hint: b.hint,
        });
    }
    if lines.is_empty() {
        return Err(cx.invalid(
            "check",
            "at least one line (slo, plan, connections, metrics, pool_budget, refused_connections)",
        ));
    }
    Ok(CheckSpec {
        profile: profile.clone(),
        lines,
    })
}

fn is_id(id: &str) -> bool {
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
