//! Catalog validation: a small valid fixture scenario, mutated one thing per test, must fail
//! with an error that names the file, the field and what was expected.

// Helpers unwrap too: a failed setup must fail the test loudly (clippy only exempts the
// test functions themselves).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sdlab_engine::catalog::{
    parse_scenario, Catalog, CatalogError, CheckLine, DependencyFault, FaultAnswer, LearningStage,
    Percentile, Scenario, SloMetric,
};
use sdlab_engine::load::{Method, ParamGen};

/// A valid scenario that exercises every section the validator reads.
const VALID: &str = r#"
id = "t1-99"
title = "Fixture"
track = 1
stage = "walking"
concepts = ["testing"]
minutes = 10
hints = ["Look at the fixture."]

[topology]
instances = 2

[topology.postgres]
database = "fixture"
settings = { max_connections = 40, client_connection_check_interval = "1s" }

[db]
schema = "db/schema.sql"

[[requests]]
name = "list"
method = "GET"
path = "/items"
oracle = { sql = "SELECT $3 = 200 AND jsonb_typeof($1) = 'array'", hint = "A list." }

[[requests]]
name = "get_item"
method = "GET"
path = "/items/{item_id}"
params.item_id = { uniform = [1, 100] }
oracle = { sql = "SELECT $3 = 200 AND ($1->>'id')::int = ($2->>'item_id')::int", hint = "That item." }

[[requests]]
name = "unused"
method = "DELETE"
path = "/items"
oracle = { sql = "SELECT $3 = 204", hint = "Deleted." }

[profiles.check]
description = "Ramp up, then hold."
timeout = "1.5s"
stages = [
    { duration = "500ms", rate_from = 5, rate = 50 },
    { duration = "2m", rate = 50 },
]
mix = { list = 3, get_item = 1, unused = 0 }

[check]
profile = "check"

[[check.slo]]
metric = "p95"
max = "250ms"
hint = "Slow."

[[check.slo]]
metric = "p99"
request = "get_item"
max = "1s"
hint = "One item is slow."

[[check.slo]]
metric = "error_rate"
max = 0.01
hint = "Errors."

[[check.slo]]
metric = "achieved_rate"
min_ratio = 0.9
hint = "Falls behind."

[check.pool_budget]
reserved = 3
hint = "Pool too big."
"#;

/// A scenario folder named like a real one, with the db files the fixture refers to.
struct Fixture {
    _root: tempfile::TempDir,
    file: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t1-99-fixture");
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::write(
            dir.join("db/schema.sql"),
            "create table items (id int primary key);\n",
        )
        .unwrap();
        Fixture {
            file: dir.join("scenario.toml"),
            _root: root,
        }
    }

    fn parse(&self, text: &str) -> Result<Scenario, CatalogError> {
        parse_scenario(&self.file, text)
    }

    /// Parses the fixture with `from` replaced by `to` and returns the error.
    fn error_with(&self, from: &str, to: &str) -> CatalogError {
        self.parse(&edit(VALID, from, to))
            .expect_err(&format!("replacing {from:?} by {to:?} should be rejected"))
    }
}

/// `text` with `from` replaced by `to`; `from` must occur exactly once, so a test can't
/// silently mutate nothing.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} should occur once in the fixture"
    );
    text.replacen(from, to, 1)
}

/// Asserts an `Invalid` error on `field` whose message names the file, the field and
/// contains each of `expected`.
fn assert_invalid(err: &CatalogError, file: &Path, field: &str, expected: &[&str]) {
    let CatalogError::Invalid {
        path, field: got, ..
    } = err
    else {
        panic!("expected CatalogError::Invalid on `{field}`, got {err:?}");
    };
    assert_eq!(path, file);
    assert_eq!(got, field);
    let message = err.to_string();
    assert!(
        message.contains(&file.display().to_string()),
        "file not named: {message}"
    );
    assert!(
        message.contains(&format!("`{field}`")),
        "field not named: {message}"
    );
    for e in expected {
        assert!(message.contains(e), "{e:?} not in: {message}");
    }
}

#[test]
fn valid_fixture_parses_into_typed_values() {
    let fx = Fixture::new();
    let s = fx.parse(VALID).unwrap();
    assert_eq!(s.id, "t1-99");
    assert_eq!(s.dir_name(), "t1-99-fixture");
    assert_eq!(s.stage, LearningStage::Walking);
    assert_eq!(s.service_package(), "scenario-t1-99-service");
    assert_eq!(s.solution_package(), "scenario-t1-99-solution");
    assert_eq!(s.topology.instances, 2);
    let pg = s.topology.postgres.as_ref().unwrap();
    assert_eq!(pg.max_connections(), 40);
    assert_eq!(pg.template_database(), "fixture_seed");
    assert_eq!(pg.settings["client_connection_check_interval"], "1s");
    let db = s.db.as_ref().unwrap();
    assert!(db.schema.is_absolute() && db.schema.ends_with("t1-99-fixture/db/schema.sql"));
    assert_eq!(db.seed, None);

    let profile = &s.check.profile;
    assert_eq!(profile.name, "check");
    assert_eq!(profile.timeout, Duration::from_millis(1500));
    assert_eq!(profile.max_in_flight, 2_000, "the default");
    assert_eq!(profile.stages.len(), 2);
    assert_eq!(profile.stages[0].duration, Duration::from_millis(500));
    assert_eq!(profile.stages[0].rate_from, Some(5.0));
    assert_eq!(profile.stages[1].duration, Duration::from_secs(120));
    assert_eq!(profile.duration(), Duration::from_millis(120_500));
    assert_eq!(profile.target_rate(), 50.0);
    // Weight-0 entries are dropped; the rest keep their weights (mix is sorted by name).
    let mix: Vec<(&str, u32)> = profile
        .mix
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(mix, [("get_item", 1), ("list", 3)]);
    let get_item = &profile.mix[0];
    assert_eq!(get_item.method, Method::Get);
    assert_eq!(
        get_item.params["item_id"],
        ParamGen::Uniform { min: 1, max: 100 }
    );

    let metrics: Vec<(SloMetric, Option<&str>)> = s
        .check
        .lines
        .iter()
        .filter_map(|l| match l {
            CheckLine::Slo {
                metric, request, ..
            } => Some((*metric, request.as_deref())),
            _ => None,
        })
        .collect();
    assert_eq!(
        metrics,
        [
            (
                SloMetric::Latency {
                    percentile: Percentile::P95,
                    max: Duration::from_millis(250)
                },
                None
            ),
            (
                SloMetric::Latency {
                    percentile: Percentile::P99,
                    max: Duration::from_secs(1)
                },
                Some("get_item")
            ),
            (SloMetric::ErrorRate { max: 0.01 }, None),
            (SloMetric::AchievedRate { min_ratio: 0.9 }, None),
        ]
    );
    assert!(matches!(
        s.check.lines.last(),
        Some(CheckLine::PoolBudget { reserved: 3, .. })
    ));
}

#[test]
fn unknown_field_is_named_in_the_error() {
    let fx = Fixture::new();
    let err = fx.error_with("timeout = \"1.5s\"", "timout = \"1.5s\"");
    let CatalogError::Parse { path, message } = &err else {
        panic!("expected CatalogError::Parse, got {err:?}");
    };
    assert_eq!(path, &fx.file);
    assert!(message.contains("unknown field `timout`"), "{message}");
    assert!(
        message.contains("`timeout`"),
        "the expected fields are listed: {message}"
    );
    assert!(
        err.to_string().contains(&fx.file.display().to_string()),
        "{err}"
    );
}

#[test]
fn bad_duration_names_the_stage_and_the_expected_form() {
    let fx = Fixture::new();
    let err = fx.error_with("duration = \"500ms\"", "duration = \"500 ms\"");
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.stages[0].duration",
        &["a positive duration such as \"250ms\"", "\"500 ms\""],
    );
}

#[test]
fn zero_timeout_is_not_a_duration() {
    let fx = Fixture::new();
    let err = fx.error_with("timeout = \"1.5s\"", "timeout = \"0s\"");
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.timeout",
        &["a positive duration"],
    );
}

#[test]
fn absurdly_long_duration_is_an_error_not_a_panic() {
    let fx = Fixture::new();
    let err = fx.error_with(
        "duration = \"2m\"",
        "duration = \"99999999999999999999999m\"",
    );
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.stages[1].duration",
        &["a positive duration"],
    );
    // Two stages that each fit a Duration but whose sum does not.
    let text = edit(
        &edit(
            VALID,
            "duration = \"2m\"",
            "duration = \"10000000000000000000s\"",
        ),
        "duration = \"500ms\"",
        "duration = \"10000000000000000000s\"",
    );
    let err = fx.parse(&text).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.stages",
        &["at most 10 minutes"],
    );
}

#[test]
fn check_profile_that_does_not_exist_lists_the_profiles() {
    let fx = Fixture::new();
    let err = fx.error_with("profile = \"check\"", "profile = \"chek\"");
    assert_invalid(
        &err,
        &fx.file,
        "check.profile",
        &[
            "the name of a [profiles.<name>] section (check)",
            "\"chek\"",
        ],
    );
}

#[test]
fn mix_entry_naming_a_missing_request_lists_the_requests() {
    let fx = Fixture::new();
    let err = fx.error_with("list = 3,", "lst = 3,");
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.mix.lst",
        &["the name of a [[requests]] entry (list, get_item, unused)"],
    );
}

#[test]
fn mix_with_only_zero_weights_is_rejected() {
    let fx = Fixture::new();
    let err = fx.error_with("{ list = 3, get_item = 1, unused = 0 }", "{ list = 0 }");
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.mix",
        &["at least one request with a weight above 0"],
    );
}

#[test]
fn placeholder_without_a_generator_is_named() {
    let fx = Fixture::new();
    let err = fx.error_with("params.item_id = ", "params.id = ");
    assert_invalid(
        &err,
        &fx.file,
        "requests[1].params",
        &["a generator for {item_id}", "/items/{item_id}"],
    );
}

#[test]
fn unknown_method_is_named_with_its_index() {
    let fx = Fixture::new();
    let err = fx.error_with(
        "method = \"GET\"\npath = \"/items/{item_id}\"",
        "method = \"FETCH\"\npath = \"/items/{item_id}\"",
    );
    assert_invalid(
        &err,
        &fx.file,
        "requests[1].method",
        &["GET, POST, PUT or DELETE", "\"FETCH\""],
    );
}

#[test]
fn id_not_matching_the_folder_is_rejected() {
    let fx = Fixture::new();
    let err = fx.error_with("id = \"t1-99\"", "id = \"t1-98\"");
    assert_invalid(
        &err,
        &fx.file,
        "id",
        &[
            "the folder name to start with the id",
            "\"t1-99-fixture\"",
            "\"t1-98\"",
        ],
    );
}

#[test]
fn id_of_the_wrong_shape_is_rejected() {
    let fx = Fixture::new();
    let err = fx.error_with("id = \"t1-99\"", "id = \"t1-99-fixture\"");
    assert_invalid(&err, &fx.file, "id", &["t<track>-<nn> such as \"t1-01\""]);
}

#[test]
fn unknown_stage_lists_the_four_stages() {
    let fx = Fixture::new();
    let err = fx.error_with("stage = \"walking\"", "stage = \"flying\"");
    assert_invalid(
        &err,
        &fx.file,
        "stage",
        &["one of crawling, walking, running, sprinting", "\"flying\""],
    );
}

#[test]
fn missing_db_file_names_the_path_it_looked_for() {
    let fx = Fixture::new();
    let err = fx.error_with(
        "schema = \"db/schema.sql\"",
        "schema = \"db/schema.sql\"\nseed = \"db/seed.sql\"",
    );
    assert_invalid(&err, &fx.file, "db.seed", &["seed.sql does not exist"]);
    let err = fx.error_with("schema = \"db/schema.sql\"", "schema = \"db/missing.sql\"");
    assert_invalid(&err, &fx.file, "db.schema", &["missing.sql does not exist"]);
}

#[test]
fn load_longer_than_ten_minutes_is_rejected() {
    let fx = Fixture::new();
    let err = fx.error_with("duration = \"2m\"", "duration = \"10m\"");
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.stages",
        &["a total duration of at most 10 minutes"],
    );
}

#[test]
fn error_rate_max_outside_zero_to_one_is_rejected() {
    let fx = Fixture::new();
    for bad in ["1.5", "-0.1", "\"1%\"", "2"] {
        let err = fx.error_with("max = 0.01", &format!("max = {bad}"));
        assert_invalid(
            &err,
            &fx.file,
            "check.slo[2].max",
            &["a fraction between 0 and 1"],
        );
    }
    for good in ["0", "0.0", "1", "1.0"] {
        let text = edit(VALID, "max = 0.01", &format!("max = {good}"));
        let s = fx
            .parse(&text)
            .unwrap_or_else(|e| panic!("max = {good} should be accepted: {e}"));
        assert!(s.check.lines.iter().any(|l| matches!(
            l,
            CheckLine::Slo {
                metric: SloMetric::ErrorRate { .. },
                ..
            }
        )));
    }
}

#[test]
fn zero_max_in_flight_is_rejected_before_any_run() {
    let fx = Fixture::new();
    let err = fx.error_with(
        "timeout = \"1.5s\"",
        "timeout = \"1.5s\"\nmax_in_flight = 0",
    );
    assert_invalid(
        &err,
        &fx.file,
        "profiles.check.max_in_flight",
        &["at least 1"],
    );
}

#[test]
fn real_catalog_loads_and_finds_scenarios_by_id_or_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let catalog = Catalog::load(&root).unwrap();
    assert!(!catalog.scenarios.is_empty());
    let by_id = catalog.get("t1-01").unwrap();
    let by_folder = catalog.get("t1-01-diagnosing-failures").unwrap();
    assert_eq!(by_id.dir, by_folder.dir);
    assert_eq!(by_id.id, "t1-01");

    let err = catalog.get("nope").unwrap_err();
    let CatalogError::NotFound { id, known } = &err else {
        panic!("expected CatalogError::NotFound, got {err:?}");
    };
    assert_eq!(id, "nope");
    assert!(known.split(", ").any(|k| k == "t1-01"), "{known}");
    assert!(err.to_string().contains("t1-01"), "{err}");
}

#[test]
fn a_stub_dependency_parses_and_its_mistakes_are_named() {
    let fx = Fixture::new();
    let dependency = "[db]";
    let with = |block: &str| {
        edit(
            VALID,
            dependency,
            &format!("[topology.dependency]\n{block}\n\n[db]"),
        )
    };
    let s = fx
        .parse(&with(
            "name = \"payments\"\nenv = \"PAYMENTS_URL\"\nlatency = \"250ms\"",
        ))
        .unwrap();
    let dep = s.topology.dependency.unwrap();
    assert_eq!(
        (dep.name.as_str(), dep.env.as_str()),
        ("payments", "PAYMENTS_URL")
    );
    assert_eq!(dep.latency, std::time::Duration::from_millis(250));
    // With two instances, the check gets an "instances up" line first.
    assert!(matches!(s.check.lines[0], CheckLine::InstancesUp { .. }));

    let err = fx
        .parse(&with(
            "name = \"payments\"\nenv = \"DATABASE_URL\"\nlatency = \"250ms\"",
        ))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.dependency.env",
        &["PAYMENTS_URL", "\"DATABASE_URL\""],
    );
    let err = fx
        .parse(&with(
            "name = \"payments\"\nenv = \"PAYMENTS_URL\"\nlatency = \"quick\"",
        ))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.dependency.latency",
        &["\"quick\""],
    );
}

#[test]
fn panels_parse_and_their_mistakes_are_named() {
    let fx = Fixture::new();
    let with = |block: &str| edit(VALID, "[db]", &format!("{block}\n\n[db]"));
    let s = fx
        .parse(&with(
            "[[panels]]\ntitle = \"Pool\"\nunit = \"handlers\"\nseries = [\n  { label = \"waiting\", metric = \"db_pool_waiting\", instance = 2 },\n  { label = \"timeouts/s\", metric = \"db_pool_acquire_timeouts_total\", rate = true },\n]",
        ))
        .unwrap();
    assert_eq!(s.panels.len(), 1);
    let series = &s.panels[0].series;
    assert_eq!(
        (
            series[0].metric.as_str(),
            series[0].instance,
            series[0].rate
        ),
        ("db_pool_waiting", Some(2), false)
    );
    assert_eq!((series[1].instance, series[1].rate), (None, true));

    let err = fx
        .parse(&with("[[panels]]\ntitle = \"Pool\"\nunit = \"x\"\nseries = [{ label = \"w\", metric = \"db pool\" }]"))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "panels[0].series[0].metric",
        &["\"db pool\""],
    );
    let err = fx
        .parse(&with("[[panels]]\ntitle = \"Pool\"\nunit = \"x\"\nseries = [{ label = \"w\", metric = \"up\", instance = 0 }]"))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "panels[0].series[0].instance",
        &["between 1 and 8"],
    );
    let err = fx
        .parse(&with(
            "[[panels]]\ntitle = \"Pool\"\nunit = \"x\"\nseries = []",
        ))
        .unwrap_err();
    assert_invalid(&err, &fx.file, "panels[0].series", &["at least one"]);
}

#[test]
fn a_shorter_check_cuts_only_the_steady_stage_and_says_so() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/t1-01-diagnosing-failures");
    let scenario = sdlab_engine::catalog::load_scenario(&dir.join("scenario.toml")).unwrap();
    let original = scenario.check.profile.clone();
    let mut short = original.clone();
    short.hold_at_most(Duration::from_secs(8));
    let n = original.stages.len();
    assert_eq!(short.stages.len(), n);
    // The ramp is kept as it is; only the steady stage is cut; every rate stays.
    assert_eq!(short.stages[..n - 1], original.stages[..n - 1]);
    assert_eq!(short.stages[n - 1].duration, Duration::from_secs(8));
    assert_eq!(short.stages[n - 1].rate, original.stages[n - 1].rate);
    assert_eq!(short.target_rate(), original.target_rate());
    assert!(
        short.description.contains("SDLAB_CHECK_HOLD_SECS"),
        "{}",
        short.description
    );
    // A hold longer than the stage changes nothing.
    let mut long = original.clone();
    long.hold_at_most(Duration::from_secs(3600));
    assert_eq!(long.stages, original.stages);
    assert_eq!(long.description, original.description);
}

#[test]
fn a_scenario_can_keep_its_whole_hold_with_min_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/t1-04-horizontal-scaling");
    let scenario = sdlab_engine::catalog::load_scenario(&dir.join("scenario.toml")).unwrap();
    assert_eq!(scenario.check.min_hold, Some(Duration::from_secs(20)));
    let fx = Fixture::new();
    let err = fx.error_with(
        "profile = \"check\"",
        "profile = \"check\"\nmin_hold = \"soon\"",
    );
    assert!(err.to_string().contains("check.min_hold"), "{err}");
}

#[test]
fn a_load_request_is_bounded_the_same_way_for_every_front_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/t1-01-diagnosing-failures");
    let s = sdlab_engine::catalog::load_scenario(&dir.join("scenario.toml")).unwrap();
    assert!(s
        .load_request("explore", Some(60.0), Some(Duration::from_secs(30)))
        .is_ok());
    let missing = s.load_request("nope", None, None).unwrap_err();
    assert!(
        missing.contains("no load profile \"nope\"") && missing.contains("explore"),
        "{missing}"
    );
    for rate in [0.0, -1.0, 20_001.0, f64::NAN] {
        let err = s.load_request("explore", Some(rate), None).unwrap_err();
        assert!(err.contains("at most 20000"), "{rate}: {err}");
    }
    for secs in [0, 601] {
        let err = s
            .load_request("explore", None, Some(Duration::from_secs(secs)))
            .unwrap_err();
        assert!(err.contains("at most 600 s"), "{secs}: {err}");
    }
    assert!(s
        .load_request("explore", Some(20_000.0), Some(Duration::from_secs(600)))
        .is_ok());
}

#[test]
fn a_request_kind_without_an_oracle_does_not_load() {
    let fx = Fixture::new();
    let err = fx.error_with(
        "oracle = { sql = \"SELECT $3 = 204\", hint = \"Deleted.\" }\n",
        "",
    );
    assert_invalid(
        &err,
        &fx.file,
        "requests[2].oracle",
        &["a [requests.oracle] for \"unused\"", "$1 the answer"],
    );
}

#[test]
fn an_oracle_with_an_empty_hint_or_a_missing_answers_file_is_rejected() {
    let fx = Fixture::new();
    let err = fx.error_with("hint = \"Deleted.\"", "hint = \" \"");
    assert_invalid(&err, &fx.file, "requests[2].oracle.hint", &["a hint"]);
    let err = fx.error_with(
        "hint = \"Deleted.\"",
        "hint = \"Deleted.\", answers = \"oracle/none.json\"",
    );
    assert_invalid(
        &err,
        &fx.file,
        "requests[2].oracle.answers",
        &["does not exist"],
    );
}

#[test]
fn every_request_kind_has_its_oracle_and_every_check_judges_answers() {
    let fx = Fixture::new();
    let s = fx.parse(VALID).unwrap();
    assert_eq!(
        s.oracles.keys().map(String::as_str).collect::<Vec<_>>(),
        ["get_item", "list", "unused"]
    );
    assert!(s.oracles["unused"]
        .sql
        .as_deref()
        .unwrap()
        .contains("$3 = 204"));
    assert!(s
        .check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::Answers)));
}

#[test]
fn a_redis_parses_its_size_and_policy_and_names_its_mistakes() {
    let fx = Fixture::new();
    let with = |body: &str| {
        edit(
            VALID,
            "[topology.postgres]",
            &format!("[topology.redis]\n{body}\n\n[topology.postgres]"),
        )
    };
    let s = fx
        .parse(&with("maxmemory = \"2mb\"\npolicy = \"allkeys-lru\""))
        .unwrap();
    let redis = s.topology.redis.unwrap();
    assert_eq!(redis.maxmemory, Some(2 << 20));
    assert_eq!(redis.policy.as_deref(), Some("allkeys-lru"));
    assert!(!redis.persistence);
    assert!(fx.parse(VALID).unwrap().topology.redis.is_none());
    let err = fx.parse(&with("maxmemory = \"512kb\"")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.redis.maxmemory",
        &["at least 1mb", "\"512kb\""],
    );
    let err = fx.parse(&with("maxmemory = \"two\"")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.redis.maxmemory",
        &["a size such as"],
    );
    let err = fx.parse(&with("policy = \"lru\"")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.redis.policy",
        &["noeviction", "allkeys-lru", "\"lru\""],
    );
}

#[test]
fn workers_a_restart_a_worker_down_a_drain_and_a_queue_depth_parse_and_name_their_mistakes() {
    let fx = Fixture::new();
    let queue = |workers: &str, check: &str| {
        edit(
            &edit(
                VALID,
                "[topology.postgres]",
                &format!("[topology.workers]\ncount = {workers}\n\n[topology.redis]\n\n[topology.postgres]"),
            ),
            "[check]\nprofile = \"check\"\n",
            &format!("[check]\nprofile = \"check\"\n{check}\n"),
        )
    };
    let drain = "[check.drain]\nsql = \"SELECT 0\"\nwithin = \"10s\"\nhint = \"Left.\"\n";
    let depth = "[check.queue_depth]\nkey = \"orders\"\nmax = 250\nhint = \"Deep.\"\n";
    let s = fx
        .parse(&queue("2", &format!("restart_at = \"1s\"\n{drain}{depth}")))
        .unwrap();
    assert_eq!(s.topology.workers.map(|w| w.count), Some(2));
    assert_eq!(s.check.restart_at, Some(Duration::from_secs(1)));
    assert!(s.check.lines.iter().any(|l| matches!(
        l,
        CheckLine::Drain { within, .. } if *within == Duration::from_secs(10)
    )));
    assert!(s.check.lines.iter().any(|l| matches!(
        l,
        CheckLine::QueueDepth { key, max: 250, .. } if key == "orders"
    )));
    let err = fx.parse(&queue("0", "")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.workers.count",
        &["between 1 and 8"],
    );
    let err = fx.parse(&queue("1", "restart_at = \"5m\"")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.restart_at",
        &["inside the check load"],
    );
    // How long the killed worker stays down: zero unless said, only with a restart, bounded.
    assert_eq!(s.check.worker_down, Duration::ZERO);
    let down = fx
        .parse(&queue("1", "restart_at = \"1s\"\nworker_down = \"1500ms\""))
        .unwrap();
    assert_eq!(down.check.worker_down, Duration::from_millis(1500));
    let err = fx.parse(&queue("1", "worker_down = \"1s\"")).unwrap_err();
    assert_invalid(&err, &fx.file, "check.worker_down", &["a `restart_at` too"]);
    let err = fx
        .parse(&queue("1", "restart_at = \"1s\"\nworker_down = \"30s\""))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.worker_down",
        &["at most 10 s", "\"30s\""],
    );
    let err = fx
        .parse(&queue("1", &drain.replace("10s", "5m")))
        .unwrap_err();
    assert_invalid(&err, &fx.file, "check.drain.within", &["at most 120s"]);
    let no_redis = queue("1", depth).replace("[topology.redis]\n", "");
    let err = fx.parse(&no_redis).unwrap_err();
    assert_invalid(&err, &fx.file, "check.queue_depth", &["[topology.redis]"]);
}

#[test]
fn request_headers_parse_with_placeholders_and_name_their_mistakes() {
    let fx = Fixture::new();
    let from = "params.item_id = { uniform = [1, 100] }\n";
    let with = |headers: &str| edit(VALID, from, &format!("{from}headers = {{ {headers} }}\n"));
    let s = fx
        .parse(&with("\"Idempotency-Key\" = \"item-{item_id}\""))
        .unwrap();
    let get_item = s
        .profiles
        .values()
        .flat_map(|p| &p.mix)
        .find(|r| r.name == "get_item")
        .unwrap();
    assert_eq!(
        get_item.headers,
        vec![("Idempotency-Key".to_string(), "item-{item_id}".to_string())]
    );
    let err = fx.parse(&with("\"Bad Name\" = \"x\"")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "requests[1].headers.Bad Name",
        &["`Bad Name` is not an HTTP header name"],
    );
    let err = fx.parse(&with("\"X-Client\" = \"{client}\"")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "requests[1].params",
        &["a generator for {client}"],
    );
}

#[test]
fn a_retrying_request_kind_parses_and_a_fourth_resend_is_refused() {
    let fx = Fixture::new();
    let from = "params.item_id = { uniform = [1, 100] }\n";
    let with = |retries: u32| edit(VALID, from, &format!("{from}retries = {retries}\n"));
    let s = fx.parse(&with(2)).unwrap();
    let get_item = s
        .profiles
        .values()
        .flat_map(|p| &p.mix)
        .find(|r| r.name == "get_item")
        .unwrap();
    assert_eq!(get_item.retries, 2);
    let err = fx.parse(&with(4)).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "requests[1].retries",
        &["0 to 3 resends of an attempt that timed out, got 4"],
    );
}

#[test]
fn a_rate_limit_line_names_a_request_kind_and_a_rate() {
    let fx = Fixture::new();
    let with = |line: &str| {
        edit(
            VALID,
            "[check]\nprofile = \"check\"\n",
            &format!("[check]\nprofile = \"check\"\n[check.rate_limit]\n{line}\nhint = \"h\"\n"),
        )
    };
    let s = fx
        .parse(&with("request = \"get_item\"\nmax_rate = 12.5"))
        .unwrap();
    assert!(s.check.lines.iter().any(|l| matches!(
        l,
        CheckLine::RateLimit { request, max_rate, .. } if request == "get_item" && *max_rate == 12.5
    )));
    let err = fx
        .parse(&with("request = \"nope\"\nmax_rate = 12.5"))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.rate_limit.request",
        &["the name of a [[requests]] entry, got \"nope\""],
    );
    let err = fx
        .parse(&with("request = \"get_item\"\nmax_rate = 0.0"))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.rate_limit.max_rate",
        &["successful answers per second above 0"],
    );
}

#[test]
fn a_dependency_fault_parses_its_window_and_answer_and_names_its_mistakes() {
    let fx = Fixture::new();
    let dependency = "[topology.dependency]\nname = \"fulfilment\"\nenv = \"FULFILMENT_URL\"\nlatency = \"250ms\"\n\n[topology.postgres]";
    let with = |dep: bool, fault: &str| {
        let base = if dep {
            edit(VALID, "[topology.postgres]", dependency)
        } else {
            VALID.to_string()
        };
        edit(
            &base,
            "[check]\nprofile = \"check\"\n",
            &format!("[check]\nprofile = \"check\"\n[check.dependency_fault]\n{fault}\n"),
        )
    };
    let late = "at = \"9s\"\nlasting = \"1s\"\nanswer = \"late\"\nlate_by = \"3s\"";
    let s = fx.parse(&with(true, late)).unwrap();
    assert_eq!(
        s.check.dependency_fault,
        Some(DependencyFault {
            at: Duration::from_secs(9),
            lasting: Duration::from_secs(1),
            answer: FaultAnswer::Late(Duration::from_secs(3)),
        })
    );
    let down = fx
        .parse(&with(
            true,
            "at = \"1s\"\nlasting = \"2s\"\nanswer = \"down\"",
        ))
        .unwrap();
    assert_eq!(
        down.check.dependency_fault.map(|f| f.answer),
        Some(FaultAnswer::Down)
    );
    assert_eq!(fx.parse(VALID).unwrap().check.dependency_fault, None);
    let err = fx.parse(&with(false, late)).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.dependency_fault",
        &["[topology.dependency]"],
    );
    let err = fx
        .parse(&with(true, &late.replace("9s", "2m")))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.dependency_fault",
        &["inside the check load"],
    );
    let err = fx
        .parse(&with(true, &late.replace("3s", "100ms")))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.dependency_fault.late_by",
        &["longer than the dependency's usual latency (250 ms)"],
    );
    let err = fx
        .parse(&with(true, &late.replace("\nlate_by = \"3s\"", "")))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.dependency_fault.late_by",
        &["how late"],
    );
    let err = fx
        .parse(&with(true, &late.replace("\"late\"", "\"down\"")))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.dependency_fault.late_by",
        &["503 at once"],
    );
    let err = fx
        .parse(&with(true, &late.replace("\"late\"", "\"slow\"")))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.dependency_fault.answer",
        &["\"late\" or \"down\"", "\"slow\""],
    );
}

#[test]
fn an_oracle_judges_against_the_database_when_there_is_one_and_by_status_only_without() {
    let fx = Fixture::new();
    let status_only = "oracle = { status = [204], hint = \"Deleted.\" }\n";
    let err = fx.error_with(
        "oracle = { sql = \"SELECT $3 = 204\", hint = \"Deleted.\" }\n",
        status_only,
    );
    assert_invalid(
        &err,
        &fx.file,
        "requests[2].oracle.sql",
        &["the scenario has a database to judge answers against"],
    );
    // Without [topology.postgres] (and its [db]), a status list is the whole oracle.
    let no_db = edit(
        &edit(
            &edit(
                VALID,
                "[topology.postgres]\ndatabase = \"fixture\"\nsettings = { max_connections = 40, client_connection_check_interval = \"1s\" }\n",
                "",
            ),
            "[db]\nschema = \"db/schema.sql\"\n",
            "",
        ),
        "oracle = { sql = \"SELECT $3 = 204\", hint = \"Deleted.\" }\n",
        status_only,
    );
    let err = fx.parse(&no_db).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "requests[0].oracle.sql",
        &["no [topology.postgres]"],
    );
}

#[test]
fn a_streaming_replica_parses_its_delay_and_cpu_share_and_names_its_mistakes() {
    let fx = Fixture::new();
    let with = |body: &str| {
        edit(
            VALID,
            "database = \"fixture\"",
            &format!("database = \"fixture\"\n{body}"),
        )
    };
    let pg = fx.parse(VALID).unwrap().topology.postgres.unwrap();
    assert_eq!(
        (pg.replicas, pg.replica_apply_delay, pg.cpus),
        (0, Duration::ZERO, None)
    );
    let pg = fx
        .parse(&with(
            "replicas = 1\nreplica_apply_delay = \"500ms\"\ncpus = 0.5",
        ))
        .unwrap()
        .topology
        .postgres
        .unwrap();
    assert_eq!(pg.replicas, 1);
    assert_eq!(pg.replica_apply_delay, Duration::from_millis(500));
    assert_eq!(pg.cpus, Some(0.5));
    let err = fx.parse(&with("replicas = 2")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.postgres.replicas",
        &["0 or 1", "got 2"],
    );
    let err = fx.parse(&with("replica_apply_delay = \"1s\"")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.postgres.replica_apply_delay",
        &["only with replicas = 1"],
    );
    let err = fx
        .parse(&with("replicas = 1\nreplica_apply_delay = \"2m\""))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.postgres.replica_apply_delay",
        &["at most 60s"],
    );
    let err = fx.parse(&with("cpus = 9.0")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.postgres.cpus",
        &["between 0.05 and 4"],
    );
}

#[test]
fn replica_read_lines_and_the_replicas_own_cpu_share_need_a_replica() {
    let fx = Fixture::new();
    let with = |body: &str| {
        edit(
            VALID,
            "database = \"fixture\"",
            &format!("database = \"fixture\"\n{body}"),
        )
    };
    let lines = "\n[check.replica_reads]\nmin_share = 0.7\nhint = \"Read there.\"\n\
                 \n[check.primary_reads]\nmax_per_request = 300\nhint = \"Less here.\"\n";
    let replica = with("replicas = 1\ncpus = 0.2\nreplica_cpus = 0.6");
    let s = fx.parse(&format!("{replica}{lines}")).unwrap();
    let pg = s.topology.postgres.as_ref().unwrap();
    assert_eq!((pg.cpus, pg.replica_cpus), (Some(0.2), Some(0.6)));
    assert!(s
        .check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::ReplicaReads { min_share, .. } if *min_share == 0.7)));
    assert!(s.check.lines.iter().any(|l| matches!(
        l,
        CheckLine::PrimaryReads { max_per_request, .. } if *max_per_request == 300.0
    )));
    let err = fx.parse(&format!("{VALID}{lines}")).unwrap_err();
    assert_invalid(&err, &fx.file, "check.replica_reads", &["replicas = 1"]);
    let err = fx.parse(&with("replica_cpus = 0.6")).unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "topology.postgres.replica_cpus",
        &["only with replicas = 1"],
    );
    let share = "\n[check.replica_reads]\nmin_share = 1.5\nhint = \"x\"\n";
    let err = fx
        .parse(&format!("{}{share}", with("replicas = 1")))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.replica_reads.min_share",
        &["at most 1", "got 1.5"],
    );
}

#[test]
fn request_id_and_route_metric_lines_parse_with_their_defaults_and_mistakes_are_named() {
    let fx = Fixture::new();
    let ids = "\n[check.request_ids]\nhint = \"Echo it.\"\n";
    let routes = "\n[check.route_metrics]\nhint = \"Per route.\"\n";
    let s = fx.parse(&format!("{VALID}{ids}{routes}")).unwrap();
    let echoed = s.check.lines.iter().find_map(|l| match l {
        CheckLine::RequestIdsEchoed { header, hint } => Some((header.as_str(), hint.as_str())),
        _ => None,
    });
    assert_eq!(echoed, Some(("X-Request-Id", "Echo it.")));
    assert!(s
        .check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::RequestIdsLogged { hint, .. } if hint == "Echo it.")));
    assert!(!s
        .check
        .lines
        .iter()
        .any(|l| matches!(l, CheckLine::RequestIdsPropagated { .. })));
    let route = s.check.lines.iter().find_map(|l| match l {
        CheckLine::RouteMetrics {
            histogram,
            label,
            min_ratio,
            routes,
            ..
        } => Some((histogram.clone(), label.clone(), *min_ratio, routes.clone())),
        _ => None,
    });
    // The check mix's paths (weight 0 dropped), each once.
    assert_eq!(
        route,
        Some((
            "http_request_duration_seconds".to_string(),
            "route".to_string(),
            0.95,
            vec!["/items".to_string(), "/items/{item_id}".to_string()]
        ))
    );

    let err = fx
        .parse(&format!(
            "{VALID}\n[check.request_ids]\npropagated = true\nhint = \"h\"\n"
        ))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.request_ids.propagated",
        &["[topology.dependency]"],
    );
    let err = fx
        .parse(&format!(
            "{VALID}\n[check.request_ids]\npropagated_path = \"/authorize\"\nhint = \"h\"\n"
        ))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.request_ids.propagated_path",
        &["propagated = true"],
    );
    let err = fx
        .parse(&format!(
            "{VALID}\n[check.request_ids]\nheader = \"X Request\"\nhint = \"h\"\n"
        ))
        .unwrap_err();
    assert_invalid(
        &err,
        &fx.file,
        "check.request_ids.header",
        &["\"X Request\""],
    );
    let err = fx
        .parse(&format!(
            "{VALID}\n[check.route_metrics]\nmin_ratio = 1.5\nhint = \"h\"\n"
        ))
        .unwrap_err();
    assert_invalid(&err, &fx.file, "check.route_metrics.min_ratio", &["1.5"]);
    let err = fx
        .parse(&format!("{VALID}\n[check.route_metrics]\nhint = \" \"\n"))
        .unwrap_err();
    assert_invalid(&err, &fx.file, "check.route_metrics.hint", &["hint"]);
}
