//! The committed `dashboards/` (a Grafana dashboard and a Prometheus configuration per
//! scenario) are exactly what `sdlab dashboards` generates from the one chart definition;
//! every dashboard validates against Grafana's dashboard schema and every query against the
//! Prometheus data query schema, both vendored in docs/schemas/grafana/ (offline); and every
//! lab series a query names is one the exporter serves (the replica's too, which the
//! real-Prometheus test in cli/tests/it/prometheus.rs does not start).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sdlab_engine::catalog::Catalog;
use sdlab_engine::dashboards::{self, generate};
use sdlab_engine::load::LoadTally;
use sdlab_engine::metrics::export::render;
use sdlab_engine::metrics::{PgSample, RedisSample, ReplicaSample, Sample, ServiceSample};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn catalog() -> Catalog {
    Catalog::load(&repo().join("scenarios")).expect("the catalog loads")
}

fn validator(file: &str) -> jsonschema::Validator {
    let path = repo().join("docs/schemas/grafana").join(file);
    let text = std::fs::read_to_string(&path).expect("the vendored schema is there");
    let schema: Value = serde_json::from_str(&text).expect("the vendored schema is JSON");
    jsonschema::validator_for(&schema).expect("the vendored schema compiles offline")
}

#[test]
fn the_committed_dashboards_are_what_the_catalog_generates() {
    let problems = generate::check(&catalog(), &repo().join("dashboards")).unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_changed_or_left_over_dashboard_is_named_with_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog();
    generate::write(&catalog, dir.path()).unwrap();
    assert!(generate::check(&catalog, dir.path()).unwrap().is_empty());
    let file = dir.path().join("t1-01/dashboard.json");
    std::fs::write(&file, "{}").unwrap();
    std::fs::create_dir_all(dir.path().join("t9-99")).unwrap();
    std::fs::write(dir.path().join("t9-99/prometheus.yml"), "").unwrap();
    let problems = generate::check(&catalog, dir.path()).unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .all(|p| p.contains("run `sdlab dashboards`")));
    generate::write(&catalog, dir.path()).unwrap();
    assert!(generate::check(&catalog, dir.path()).unwrap().is_empty());
    assert!(!dir.path().join("t9-99").exists());
}

#[test]
fn every_committed_dashboard_and_query_validates_against_grafanas_vendored_schemas() {
    let dashboard = validator("dashboard.jsonschema.json");
    let query = validator("prometheus.jsonschema.json");
    let catalog = catalog();
    for scenario in &catalog.scenarios {
        let path = repo()
            .join("dashboards")
            .join(&scenario.id)
            .join("dashboard.json");
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let errors: Vec<String> = dashboard
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {}",
            path.display(),
            errors.join("; ")
        );
        let panels = json["panels"].as_array().unwrap();
        assert_eq!(panels.len(), dashboards::charts(scenario).len());
        for panel in panels {
            for target in panel["targets"].as_array().unwrap() {
                let errors: Vec<String> =
                    query.iter_errors(target).map(|e| e.to_string()).collect();
                assert!(
                    errors.is_empty(),
                    "{} {}: {}",
                    path.display(),
                    panel["title"],
                    errors.join("; ")
                );
            }
        }
    }
    // The schema is not a rubber stamp: a panel without its type is refused.
    let mut broken: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("dashboards/t1-01/dashboard.json")).unwrap(),
    )
    .unwrap();
    broken["panels"][0].as_object_mut().unwrap().remove("type");
    assert!(!dashboard.is_valid(&broken));
}

#[test]
fn every_lab_series_a_query_names_is_one_the_exporter_serves() {
    // A second with everything a lab can have: two instances, PostgreSQL, Redis, a replica,
    // and a load run under way.
    let sample = Sample {
        services: (1..=2)
            .map(|instance| ServiceSample {
                instance,
                up: true,
                cpu: Some(0.1),
                ..Default::default()
            })
            .collect(),
        postgres: Some(PgSample {
            cpu: Some(0.2),
            max_connections: Some(100),
            ..Default::default()
        }),
        redis: Some(RedisSample::default()),
        replica: Some(ReplicaSample {
            state: "streaming".into(),
            replay_lag_seconds: Some(0.0),
            lag_bytes: Some(0),
            apply_delay_ms: Some(0),
            cpu: Some(0.1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let served: BTreeSet<String> = render("x", Some(&sample), Some(&LoadTally::default()))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('{').next())
        .map(str::to_string)
        .collect();
    let mut named = 0;
    for scenario in &catalog().scenarios {
        for chart in dashboards::charts(scenario) {
            for series in &chart.series {
                for name in series
                    .expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("sdlab_"))
                {
                    named += 1;
                    assert!(
                        served.contains(name),
                        "{}: {} names {name}, which the exporter does not serve",
                        scenario.id,
                        chart.title
                    );
                }
            }
        }
    }
    assert!(named > 50, "only {named} lab series named");
}
