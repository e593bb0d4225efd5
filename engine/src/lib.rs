//! sdlab-engine: everything System Design Lab does, as a library. The `sdlab` CLI, the HTTP
//! API and the desktop shell are thin layers over it; the engine knows nothing of them.
//!
//! # Layout
//! - `catalog`: `scenario.toml` -> validated `Scenario`.
//! - `home`: where the lab keeps its data (`LabHome`) and finds its sources (`Sources`).
//! - `workspace`: the learner's copy of a service, the scratch copy for checks, reset.
//! - `dependency`: the stub outside service (fixed latency) a scenario may ask for.
//! - `doctor`: what this machine lacks (cargo, server binaries, ...) and how to get it.
//! - `build`: cargo builds with the compiler's diagnostics on failure.
//! - `process`: child services (die with the lab), run state, stale clean-up.
//! - `procfs`: /proc reading (stat fields, process trees, CPU and memory per process set).
//! - `deploy`: the learner's deploy files (instance count, nginx config with `{{instance_N}}`).
//! - `cgroup`: a CPU quota per service instance (cgroup v2 or v1), or the reason there is none.
//! - `lab`: `Lab::up` brings PostgreSQL (seeded once), migrations and services up (also
//!   reachable as `topology`, its former name).
//! - `load`: the open-model load generator (HdrHistogram, coordinated-omission corrected).
//! - `logview`: a service's log line parsed (JSON or text: time, level, message, request ID).
//! - `redis_console`: one command to the scenario's Redis, rendered like redis-cli.
//! - `metrics`: 1 Hz samples of `/metrics`, pg_stat_activity/pg_stat_database, CPU, memory.
//! - `check`: runs the check load and judges SLO and structural lines into a table.
//! - `learner`: the learner's rules (hints, solution, recorded runs, reset), for every front end.
//! - `sql`: the SQL console (EXPLAIN ANALYZE and friends).
//! - `progress`: step events for long operations.

pub mod api;
pub mod build;
pub mod catalog;
pub mod cgroup;
pub mod check;
pub mod dashboards;
pub mod dependency;
pub mod deploy;
pub mod doctor;
pub mod freshness;
pub mod home;
pub mod lab;
pub mod learner;
pub mod load;
pub mod logview;
pub mod metrics;
pub mod process;
pub mod procfs;
pub mod progress;
pub mod redis_console;
pub mod sql;
pub mod text;
pub mod workspace;

pub use catalog::{Catalog, Scenario};
pub use home::{LabHome, Sources};
/// The lab's old module path, kept so `crate::topology::...` (the API) and outside callers
/// still resolve.
pub use lab as topology;
pub use lab::{DatabaseChoice, Lab, LabError, Running, UpOptions};
pub use workspace::CodeSource;
