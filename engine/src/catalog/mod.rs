//! The scenario catalog: finds `scenarios/*/scenario.toml`, parses and validates each
//! into a `Scenario`, the only shape of a scenario the rest of the engine sees.
//!
//! Two stages, like ripgrep's flags: `raw` mirrors the file (serde, unknown fields are
//! errors), `validate` checks meaning (references between sections, units, ranges) and
//! produces typed values. Every error names the file, the field and what was expected.

pub mod codespaces;
pub mod devcontainer;
pub mod fixes;
pub mod generated;
mod lines;
pub mod lint;
mod raw;
pub mod scaffold;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::load::{LoadPlan, LoadTargets, Model, RequestTemplate, Stage};

pub use lines::{CheckLine, Percentile, SloMetric};

/// One scenario, validated. Paths are absolute.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short id used on the command line, e.g. `t1-01`.
    pub id: String,
    /// The scenario's folder, e.g. `.../scenarios/t1-01-diagnosing-failures`.
    pub dir: PathBuf,
    pub title: String,
    pub track: u8,
    pub stage: LearningStage,
    pub concepts: Vec<String>,
    pub minutes: u32,
    pub topology: Topology,
    pub db: Option<DbSeed>,
    /// Load profiles by name; `check.profile` names one of them.
    pub profiles: BTreeMap<String, Profile>,
    pub check: CheckSpec,
    pub hints: Vec<String>,
    /// The scenario's own charts (`[[panels]]` in scenario.toml), drawn by the UI from the
    /// instances' /metrics after the standard ones.
    pub panels: Vec<Panel>,
    /// The oracle of every request kind, by request name.
    pub oracles: BTreeMap<String, Oracle>,
    /// Users the lab logs in before every load (`[sessions]`), for requests with `auth`.
    pub sessions: Option<crate::load::SessionSpec>,
}

/// A chart of the services' own metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Panel {
    pub title: String,
    pub unit: String,
    pub series: Vec<PanelSeries>,
}

/// One line of a [`Panel`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PanelSeries {
    pub label: String,
    /// A metric name from /metrics, summed over its labels.
    pub metric: String,
    /// Per-second increase of a counter instead of its value.
    pub rate: bool,
    /// One instance (1-based), or the sum over all instances.
    pub instance: Option<u32>,
}

impl Scenario {
    /// The folder's name, e.g. `t1-01-diagnosing-failures`.
    pub fn dir_name(&self) -> &str {
        self.dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.id)
    }

    /// The Cargo package of the broken service, e.g. `scenario-t1-01-service`.
    pub fn service_package(&self) -> String {
        format!("scenario-{}-service", self.id)
    }

    /// The Cargo package of the solution, e.g. `scenario-t1-01-solution`.
    pub fn solution_package(&self) -> String {
        format!("scenario-{}-solution", self.id)
    }

    pub fn guide_path(&self) -> PathBuf {
        self.dir.join("SCENARIO.md")
    }

    pub fn solution_notes_path(&self) -> PathBuf {
        self.dir.join("solution").join("SOLUTION.md")
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The load the learner asked for: the profile `name` with an optional constant `rate`
    /// (requests/s) and `duration`, within the bounds every load of the lab keeps (at most
    /// `MAX_LOAD_DURATION` and `MAX_LOAD_RATE`). The CLI and the API both ask here, so they
    /// accept and refuse the same loads with the same words.
    pub fn load_request(
        &self,
        name: &str,
        rate: Option<f64>,
        duration: Option<Duration>,
    ) -> Result<&Profile, String> {
        let profile = self.profile(name).ok_or_else(|| {
            format!(
                "{} has no load profile {name:?}; it has: {}",
                self.id,
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        if let Some(d) = duration {
            if d.is_zero() || d > MAX_LOAD_DURATION {
                return Err(format!(
                    "duration {:.0} s: expected more than 0 and at most {} s (load the lab \
                     generates is always bounded)",
                    d.as_secs_f64(),
                    MAX_LOAD_DURATION.as_secs()
                ));
            }
        }
        if let Some(r) = rate {
            if !(r > 0.0 && r <= MAX_LOAD_RATE) {
                return Err(format!(
                    "rate {r}: expected requests per second, more than 0 and at most {MAX_LOAD_RATE}"
                ));
            }
        }
        Ok(profile)
    }
}

/// The longest load run the lab starts (`sdlab load`, the API).
pub const MAX_LOAD_DURATION: Duration = Duration::from_secs(600);
/// The highest arrival rate the lab accepts (`sdlab load`, the API).
pub const MAX_LOAD_RATE: f64 = 20_000.0;

/// The four stages of each track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearningStage {
    Crawling,
    Walking,
    Running,
    Sprinting,
}

impl LearningStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LearningStage::Crawling => "crawling",
            LearningStage::Walking => "walking",
            LearningStage::Running => "running",
            LearningStage::Sprinting => "sprinting",
        }
    }
}

/// What the lab starts for a scenario.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Service instances to run (scenario 4 and later run several behind nginx).
    pub instances: u32,
    pub postgres: Option<PostgresSpec>,
    /// A slow outside service the lab runs on 127.0.0.1 for the instances to call.
    pub dependency: Option<DependencySpec>,
    /// Each instance's CPU share in cores, enforced with a cgroup quota (see `cgroup`).
    pub cpus_per_instance: Option<f64>,
    /// nginx in front of the instances; the learner's files decide its config and the count.
    pub nginx: Option<NginxSpec>,
    /// A Redis the instances share (`REDIS_URL`).
    pub redis: Option<RedisSpec>,
    /// Background workers: the service's binary run again with `SDLAB_ROLE=worker`.
    pub workers: Option<WorkersSpec>,
}

/// `[topology.workers]`: processes that run the same binary as the instances with
/// `SDLAB_ROLE=worker` and `WORKER_ID=1..count` (the instances get `SDLAB_ROLE=web`), each
/// with its own `PORT` for `/healthz` and `/metrics`, no load sent to them. Started after the
/// instances, stopped with them, listed in the run state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkersSpec {
    pub count: u32,
}

/// A real redis-server for the scenario (`[topology.redis]`), started with the lab in its own
/// folder, empty at every start unless `persistence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSpec {
    /// `maxmemory` in bytes (None: no limit).
    pub maxmemory: Option<u64>,
    /// `maxmemory-policy` (None: Redis's default, noeviction).
    pub policy: Option<String>,
    pub persistence: bool,
    /// The learner's settings file, relative to the code folder (`deploy/redis.conf`), read
    /// at every start: its `maxmemory-policy` replaces `policy` (see `deploy::read_redis`).
    pub config: Option<PathBuf>,
}

/// A load balancer the learner configures: paths are relative to the learner's service
/// folder (`deploy/nginx.conf`, `deploy/lab.toml`), read at every start.
#[derive(Debug, Clone, PartialEq)]
pub struct NginxSpec {
    pub config: PathBuf,
    pub instances_file: PathBuf,
    pub max_instances: u32,
}

/// A stand-in for an outside service (a payment provider, say): a real HTTP server on
/// 127.0.0.1 that answers every request after `latency`. Its URL is given to every instance
/// in the environment variable `env`.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencySpec {
    pub name: String,
    pub env: String,
    pub latency: Duration,
    /// The field of each call's JSON body the stub counts calls by (e.g. "job_id").
    pub key: Option<String>,
    /// A header (e.g. "Idempotency-Key") whose repeated value makes a call a retry: answered,
    /// not counted again per key.
    pub idempotency_header: Option<String>,
}

/// How the lab tells a right answer of one request kind (`[requests.oracle]`): every request
/// kind has one, or the scenario does not load. After the check load, the lab sends each kind
/// a few times on its own and judges every answer (see `check::answers`).
#[derive(Debug, Clone, PartialEq)]
pub struct Oracle {
    /// Run on the check's database right after the answer, as the superuser. Parameters:
    /// `$1` the answer (jsonb; a body that is not JSON is a JSON string), `$2` the request's
    /// parameters (jsonb object; integers as numbers), `$3` the HTTP status (int4), `$4` the
    /// JSON bodies of the calls the stub dependency received while the request ran (jsonb
    /// array). One row: the first column (boolean) says whether the answer is right; an
    /// optional second column (text) is the right answer, shown when it is not. Required
    /// when the scenario has a database.
    pub sql: Option<String>,
    /// The statuses a right answer may have (empty: any, the SQL decides).
    pub statuses: Vec<u16>,
    /// Fields recorded from the reference solution, by request path (`answers = "file"`):
    /// each must be in the answer with the same value. For what SQL cannot recompute (t1-04's
    /// digest of a CPU-heavy report).
    pub answers: Option<BTreeMap<String, serde_json::Value>>,
    /// The file `answers` came from, for messages and for recording it again.
    pub answers_file: Option<PathBuf>,
    pub hint: String,
}

#[derive(Debug, Clone)]
pub struct PostgresSpec {
    /// The database the service uses; the seeded template is `<database>_seed`.
    pub database: String,
    /// postgresql.conf settings, e.g. `max_connections = 50`.
    pub settings: BTreeMap<String, String>,
    /// Streaming standbys of the primary (0 or 1): a hot standby the services reach through
    /// `DATABASE_REPLICA_URL` (see `lab::replica`).
    pub replicas: u32,
    /// The standby's `recovery_min_apply_delay` at every start (changeable while it runs).
    pub replica_apply_delay: Duration,
    /// A CPU share in cores for the primary and, separately, for each replica: each server's
    /// postmaster (and so its backends) in its own cgroup under the lab's group.
    pub cpus: Option<f64>,
    /// The replica's share when it differs from `cpus` (t1-08: a replica with twice the
    /// primary's CPU stands for a tier of two).
    pub replica_cpus: Option<f64>,
}

impl PostgresSpec {
    pub fn template_database(&self) -> String {
        format!("{}_seed", self.database)
    }

    /// `max_connections` as configured, or PostgreSQL's default of 100.
    pub fn max_connections(&self) -> u32 {
        self.settings
            .get("max_connections")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100)
    }
}

/// Schema and seed SQL, run once into the template database.
#[derive(Debug, Clone)]
pub struct DbSeed {
    pub schema: PathBuf,
    pub seed: Option<PathBuf>,
}

/// A named load profile: stages of arrival rate and a weighted request mix.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub stages: Vec<Stage>,
    /// Templates with the profile's weights filled in (weight 0 entries are dropped).
    pub mix: Vec<RequestTemplate>,
}

impl Profile {
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Cuts the last (steady) stage to at most `hold`: the same rates and lines over a
    /// shorter run. The test suite uses it (`SDLAB_CHECK_HOLD_SECS`, read by
    /// `Lab::from_env`) so that each of many checks costs seconds less; the ramp before it is
    /// kept, so the service still warms up as it does in a learner's check.
    pub fn hold_at_most(&mut self, hold: Duration) {
        if let Some(last) = self.stages.last_mut() {
            if last.duration > hold {
                last.duration = hold;
                self.description = format!(
                    "{} (steady stage cut to {} s for the test suite: SDLAB_CHECK_HOLD_SECS)",
                    self.description,
                    hold.as_secs()
                );
            }
        }
    }

    /// The rate of the last stage: what the profile is meant to hold.
    pub fn target_rate(&self) -> f64 {
        self.stages.last().map(|s| s.rate).unwrap_or(0.0)
    }

    /// The open-model load plan of this profile against `targets` (one base URL, or every
    /// instance's, taken in turn: see `Running::load_targets`). With `rate` or `duration`
    /// given, the stages become one constant stage (each defaulting to the profile's target
    /// rate and total duration), as `sdlab load --rate --duration` asks.
    pub fn plan(
        &self,
        targets: impl Into<LoadTargets>,
        rate: Option<f64>,
        duration: Option<Duration>,
    ) -> LoadPlan {
        let stages = match (rate, duration) {
            (None, None) => self.stages.clone(),
            (rate, duration) => vec![Stage {
                duration: duration.unwrap_or_else(|| self.duration()),
                rate: rate.unwrap_or_else(|| self.target_rate()),
                rate_from: None,
            }],
        };
        LoadPlan {
            targets: targets.into().0,
            stages,
            mix: self.mix.clone(),
            timeout: self.timeout,
            max_in_flight: self.max_in_flight,
            seed: 1,
            model: Model::Open,
            sessions: None,
        }
    }
}

/// What `check` verifies: a load profile and the lines judged on it.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// The load the check runs (one of `Scenario::profiles`).
    pub profile: Profile,
    /// The shortest steady stage that still separates the broken service from a fix
    /// (`[check] min_hold`): the test suite's shorter checks never cut below it.
    pub min_hold: Option<Duration>,
    /// Kill the instance that has served the most requests this long into the check load
    /// (`[check] kill_instance_at`), as a crash or a deploy would: what users lose with it
    /// shows on the other lines (401s for lost sessions).
    pub kill_instance_at: Option<Duration>,
    /// This long into the check load (`[check] restart_at`), worker 1 (with
    /// `[topology.workers]`) is killed with SIGKILL and instance 1 stopped with SIGTERM, and
    /// each started again at once: work held only in their memory is lost, and shows on the
    /// drain line.
    pub restart_at: Option<Duration>,
    /// How long the killed worker stays down before it is started again (`[check]
    /// worker_down`, with `restart_at`; zero: at once): long enough that events published
    /// meanwhile reach nobody unless something kept them.
    pub worker_down: Duration,
    /// The stub dependency fails on a schedule during the check load
    /// (`[check.dependency_fault]`).
    pub dependency_fault: Option<DependencyFault>,
    pub lines: Vec<CheckLine>,
}

/// `[check.dependency_fault]`: from `at` into the check load, for `lasting`, every call the
/// stub dependency receives gets `answer` instead of its usual one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependencyFault {
    pub at: Duration,
    pub lasting: Duration,
    pub answer: FaultAnswer,
}

/// How the stub dependency answers a call during its fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAnswer {
    /// Does the work (the call counts as an effect) but answers only after this long: a
    /// caller whose timeout is shorter never hears that it was done, and may do it again.
    Late(Duration),
    /// Answers 503 at once and does nothing: the provider is down.
    Down,
}

/// A scenario file that could not be read or does not mean anything valid.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: field `{field}`: expected {expected}", path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        expected: String,
    },
    #[error("no scenario {id:?}; known: {known}")]
    NotFound { id: String, known: String },
    /// The scenario's folder is there but its `scenario.toml` is not usable (hand-edited,
    /// corrupt): the other scenarios still load; this one says why it cannot.
    #[error("scenario {folder:?} cannot be used until its scenario.toml is fixed: {message}")]
    Broken { folder: String, message: String },
}

/// All scenarios under a `scenarios/` folder, sorted by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub root: PathBuf,
    pub scenarios: Vec<Scenario>,
    /// Folders whose `scenario.toml` failed to load, by folder name, with the error (naming the
    /// file and the field). They are not in `scenarios`; `get` answers with their error.
    pub broken: Vec<(String, String)>,
}

impl Catalog {
    /// Loads every `*/scenario.toml` under `root`. A file that does not load leaves its
    /// scenario out (listed in `broken`, its error returned by `get`), so one hand-edited file
    /// never takes the whole lab down; an unreadable `root` is an error.
    pub fn load(root: &Path) -> Result<Catalog, CatalogError> {
        let entries = std::fs::read_dir(root).map_err(|source| CatalogError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let mut scenarios = Vec::new();
        let mut broken = Vec::new();
        for entry in entries.flatten() {
            let file = entry.path().join("scenario.toml");
            if file.is_file() {
                match load_scenario(&file) {
                    Ok(scenario) => scenarios.push(scenario),
                    Err(e) => {
                        tracing::warn!("{e}");
                        broken.push((
                            entry.file_name().to_string_lossy().to_string(),
                            e.to_string(),
                        ));
                    }
                }
            }
        }
        scenarios.sort_by(|a, b| a.id.cmp(&b.id));
        broken.sort();
        Ok(Catalog {
            root: root.to_path_buf(),
            scenarios,
            broken,
        })
    }

    /// Finds a scenario by id (`t1-01`) or by folder name (`t1-01-diagnosing-failures`).
    pub fn get(&self, id: &str) -> Result<&Scenario, CatalogError> {
        let found = self
            .scenarios
            .iter()
            .find(|s| s.id == id || s.dir_name() == id);
        if let (None, Some((folder, message))) = (
            found,
            self.broken
                .iter()
                .find(|(folder, _)| folder == id || folder.starts_with(&format!("{id}-"))),
        ) {
            return Err(CatalogError::Broken {
                folder: folder.clone(),
                message: message.clone(),
            });
        }
        found.ok_or_else(|| CatalogError::NotFound {
            id: id.to_string(),
            known: self
                .scenarios
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Reads and validates one `scenario.toml`.
pub fn load_scenario(file: &Path) -> Result<Scenario, CatalogError> {
    let text = std::fs::read_to_string(file).map_err(|source| CatalogError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    parse_scenario(file, &text)
}

/// Parses and validates scenario text; `file` names it in errors and anchors relative paths.
pub fn parse_scenario(file: &Path, text: &str) -> Result<Scenario, CatalogError> {
    let raw: raw::RawScenario = toml::from_str(text).map_err(|e| CatalogError::Parse {
        path: file.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    validate::validate(file, raw)
}

/// Parses durations written as `250ms`, `2s`, `1.5s` or `2m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    // try_: a number too large for a Duration is a bad value, not a panic.
    Duration::try_from_secs_f64(seconds).ok()
}
