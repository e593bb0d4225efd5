//! `check::evaluate` and `check::render` on hand-built `Observations`: the check table is a
//! pure function of what was measured, so every verdict can be pinned without a server.

// Helpers unwrap too: a failed setup must fail the test loudly (clippy only exempts the
// test functions themselves).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sdlab_engine::catalog::{load_scenario, CheckLine, Scenario};
use sdlab_engine::check::{
    evaluate, fmt_duration, plan_facts, render, CheckReport, DependencyCalls, KindAnswers,
    KindSessions, LineResult, Observations, PlanFacts, RequestObs, WrongAnswer,
};
use sdlab_engine::metrics::PromText;

/// The name of t1-01's plan line, which `Observations::plans` is keyed by.
const FEED_PLAN: &str = "feed query uses an index";

/// PostgreSQL's plan for the feed once an index on `created_at` (ascending, under a name of
/// the learner's choosing) serves `ORDER BY created_at DESC LIMIT 20` by reading it backward.
const PLAN_INDEX_BACKWARD: &str = r#"[{"Plan": {
  "Node Type": "Limit", "Parallel Aware": false, "Async Capable": false,
  "Startup Cost": 0.71, "Total Cost": 9.86, "Plan Rows": 20, "Plan Width": 97,
  "Plans": [{
    "Node Type": "Nested Loop", "Parent Relationship": "Outer", "Parallel Aware": false,
    "Join Type": "Inner", "Startup Cost": 0.71, "Total Cost": 457123.5, "Plan Rows": 1000000,
    "Inner Unique": true,
    "Plans": [
      {"Node Type": "Index Scan", "Parent Relationship": "Outer", "Parallel Aware": false,
       "Scan Direction": "Backward", "Index Name": "posts_by_time", "Relation Name": "posts",
       "Alias": "p", "Startup Cost": 0.42, "Total Cost": 61234.4, "Plan Rows": 1000000},
      {"Node Type": "Memoize", "Parent Relationship": "Inner", "Parallel Aware": false,
       "Cache Key": "p.user_id", "Cache Mode": "logical",
       "Plans": [
         {"Node Type": "Index Scan", "Parent Relationship": "Outer", "Parallel Aware": false,
          "Scan Direction": "Forward", "Index Name": "users_pkey", "Relation Name": "users",
          "Alias": "u", "Index Cond": "(id = p.user_id)", "Plan Rows": 1}
       ]}
    ]
  }]
}}]"#;

/// The broken service's feed plan: read every post in parallel, sort, keep 20.
const PLAN_SEQ_SCAN_SORT: &str = r#"[{"Plan": {
  "Node Type": "Limit", "Parallel Aware": false, "Plan Rows": 20,
  "Plans": [{
    "Node Type": "Gather Merge", "Parent Relationship": "Outer", "Workers Planned": 2,
    "Plans": [{
      "Node Type": "Sort", "Parent Relationship": "Outer", "Sort Key": ["p.created_at DESC"],
      "Plans": [{
        "Node Type": "Hash Join", "Parent Relationship": "Outer", "Join Type": "Inner",
        "Hash Cond": "(p.user_id = u.id)",
        "Plans": [
          {"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Parallel Aware": true,
           "Relation Name": "posts", "Alias": "p", "Plan Rows": 416667},
          {"Node Type": "Hash", "Parent Relationship": "Inner",
           "Plans": [
             {"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Parallel Aware": true,
              "Relation Name": "users", "Alias": "u", "Plan Rows": 4167}
           ]}
        ]
      }]
    }]
  }]
}}]"#;

/// One user's posts through a bitmap: the index finds the pages, the heap scan reads them.
const PLAN_BITMAP: &str = r#"[{"Plan": {
  "Node Type": "Bitmap Heap Scan", "Parallel Aware": false, "Relation Name": "posts",
  "Alias": "posts", "Recheck Cond": "(user_id = 42)", "Plan Rows": 98,
  "Plans": [
    {"Node Type": "Bitmap Index Scan", "Parent Relationship": "Outer", "Parallel Aware": false,
     "Index Name": "posts_user_id_idx", "Index Cond": "(user_id = 42)", "Plan Rows": 98}
  ]
}}]"#;

/// The same bitmap read, then sorted: an index is used, yet every matching row is sorted.
const PLAN_BITMAP_THEN_SORT: &str = r#"[{"Plan": {
  "Node Type": "Limit", "Plan Rows": 20,
  "Plans": [{
    "Node Type": "Sort", "Parent Relationship": "Outer", "Sort Key": ["created_at DESC"],
    "Plans": [{
      "Node Type": "Bitmap Heap Scan", "Parent Relationship": "Outer", "Relation Name": "posts",
      "Alias": "posts", "Recheck Cond": "(user_id = 42)",
      "Plans": [
        {"Node Type": "Bitmap Index Scan", "Parent Relationship": "Outer",
         "Index Name": "posts_user_id_idx", "Index Cond": "(user_id = 42)"}
      ]
    }]
  }]
}}]"#;

const POOL_METRICS: &str = "\
# TYPE db_pool_max gauge
db_pool_max 10
db_pool_size 6
db_pool_idle 4
db_pool_in_use 2
db_pool_waiting 0
http_requests_total{route=\"/feed\",status=\"200\"} 700
";

fn t1_01() -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/t1-01-diagnosing-failures/scenario.toml");
    load_scenario(&file).unwrap()
}

fn facts(json: &str) -> PlanFacts {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    plan_facts(&value[0]["Plan"])
}

/// Each kind's probe: this many new sessions for `PROBED` requests.
fn kinds(sessions: &[(&str, u64)]) -> BTreeMap<String, Option<KindSessions>> {
    sessions
        .iter()
        .map(|(name, n)| {
            (
                name.to_string(),
                Some(KindSessions {
                    sessions: *n,
                    requests: PROBED,
                }),
            )
        })
        .collect()
}

/// Requests per kind in the connection probe.
const PROBED: u64 = 20;

fn obs(sent: u64, failed: u64, p95: Duration) -> RequestObs {
    RequestObs {
        sent,
        failed,
        p50: p95 / 3,
        p90: p95 * 4 / 5,
        p95,
        p99: p95 * 2,
        ..RequestObs::default()
    }
}

/// Ten right answers of each of t1-01's kinds.
fn right_answers() -> BTreeMap<String, KindAnswers> {
    ["create_post", "feed", "user_posts"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                KindAnswers {
                    checked: 10,
                    wrong: 0,
                    example: None,
                },
            )
        })
        .collect()
}

/// What the solution measures: fast, no errors, pooled, indexed.
fn healthy() -> Observations {
    Observations {
        overall: obs(1_200, 0, Duration::from_millis(12)),
        per_request: BTreeMap::from([
            ("feed".to_string(), obs(720, 0, Duration::from_millis(15))),
            (
                "user_posts".to_string(),
                obs(360, 0, Duration::from_millis(8)),
            ),
            (
                "create_post".to_string(),
                obs(120, 0, Duration::from_millis(9)),
            ),
        ]),
        errors: BTreeMap::new(),
        offered_rate: 52.2,
        achieved_rate: 52.0,
        sessions_opened: Some(10),
        sessions_per_kind: kinds(&[("feed", 0), ("user_posts", 0), ("create_post", 1)]),
        metrics: vec![Some(PromText::parse(POOL_METRICS))],
        down: Vec::new(),
        served: Vec::new(),
        refused_connections: Some(0),
        max_connections: 50,
        plans: BTreeMap::from([(FEED_PLAN.to_string(), Ok(facts(PLAN_INDEX_BACKWARD)))]),
        answers: Ok(right_answers()),
        dependency_calls: None,
        load_ran: true,
        redis: None,
        key_expiries: None,
        fresh_reads: None,
        replica_reads: None,
        killed: None,
        kill_missed: None,
        route_served: Default::default(),
        request_ids: None,
        route_counts: None,
        queue: Default::default(),
    }
}

/// What the broken service measures: timeouts, a 2 s p95, a sequential scan and sort, a new
/// connection per request and no pool metrics. It still keeps up with the offered rate.
fn broken() -> Observations {
    Observations {
        overall: obs(1_200, 60, Duration::from_secs(2)),
        per_request: BTreeMap::from([
            ("feed".to_string(), obs(720, 55, Duration::from_secs(2))),
            (
                "user_posts".to_string(),
                obs(360, 4, Duration::from_millis(900)),
            ),
            (
                "create_post".to_string(),
                obs(120, 1, Duration::from_millis(700)),
            ),
        ]),
        errors: BTreeMap::from([("timeout".to_string(), 52), ("http 500".to_string(), 8)]),
        offered_rate: 52.2,
        achieved_rate: 50.0,
        sessions_opened: Some(1_200),
        sessions_per_kind: kinds(&[("feed", 20), ("user_posts", 20), ("create_post", 20)]),
        metrics: vec![Some(PromText::parse(
            "http_requests_total{route=\"/feed\",status=\"200\"} 665\n",
        ))],
        down: Vec::new(),
        served: Vec::new(),
        refused_connections: Some(0),
        max_connections: 50,
        plans: BTreeMap::from([(FEED_PLAN.to_string(), Ok(facts(PLAN_SEQ_SCAN_SORT)))]),
        answers: Ok(right_answers()),
        dependency_calls: None,
        load_ran: true,
        redis: None,
        key_expiries: None,
        fresh_reads: None,
        replica_reads: None,
        killed: None,
        kill_missed: None,
        route_served: Default::default(),
        request_ids: None,
        route_counts: None,
        queue: Default::default(),
    }
}

fn report(scenario: &Scenario, lines: Vec<LineResult>) -> CheckReport {
    CheckReport {
        scenario: scenario.id.clone(),
        code: "your code".to_string(),
        passed: lines.iter().all(|l| l.passed),
        lines,
        summary: None,
        log_errors: vec!["ERROR request failed: pool timed out".to_string()],
        answers_judged: None,
    }
}

fn hint_of(line: &CheckLine) -> &str {
    line.hint()
}

/// A single plan line on `posts`, with or without `no_sort`.
fn plan_line(no_sort: bool) -> CheckLine {
    CheckLine::Plan {
        name: "posts through an index".to_string(),
        query: "SELECT 1".to_string(),
        uses_index_on: Some("posts".to_string()),
        no_sort,
        max_buffers: None,
        hint: "Add an index.".to_string(),
    }
}

fn judge_plan(no_sort: bool, json: &str) -> LineResult {
    let observations = Observations {
        plans: BTreeMap::from([("posts through an index".to_string(), Ok(facts(json)))]),
        ..Observations::default()
    };
    evaluate(&[plan_line(no_sort)], &observations).remove(0)
}

#[test]
fn healthy_observations_pass_every_line_and_the_verdict() {
    let scenario = t1_01();
    let lines = evaluate(&scenario.check.lines, &healthy());
    assert_eq!(lines.len(), scenario.check.lines.len());
    for l in &lines {
        assert!(l.passed, "{l:?}");
        assert_eq!(l.hint, None, "no hint on a passing line: {l:?}");
    }
    let text = render(&report(&scenario, lines));
    assert!(!text.contains("FAIL"), "{text}");
    assert!(!text.contains("Hints:"), "{text}");
    assert!(
        !text.contains("From the service's log"),
        "log errors only when the check fails: {text}"
    );
    assert!(
        text.contains("\nPASS: 9 of 9 lines pass (your code, scenario t1-01).\n"),
        "{text}"
    );
    // Header, rule, one row per line: every row says PASS in the result column.
    let rows: Vec<&str> = text.lines().skip(2).take(9).collect();
    assert!(rows.iter().all(|r| r.ends_with("PASS")), "{text}");
}

#[test]
fn broken_observations_fail_exactly_the_expected_lines_with_their_hints() {
    let scenario = t1_01();
    let lines = evaluate(&scenario.check.lines, &broken());
    let verdicts: Vec<(&str, bool)> = lines.iter().map(|l| (l.label.as_str(), l.passed)).collect();
    assert_eq!(
        verdicts,
        [
            ("right answers", true),
            ("p95 latency", false),
            ("p95 latency of feed", false),
            ("error rate", false),
            ("successful requests/s", true),
            (FEED_PLAN, false),
            ("new DB connections per request", false),
            ("pool metrics exported", false),
            ("pool budget", false),
        ]
    );
    for (line, result) in scenario.check.lines.iter().zip(&lines) {
        let expected = (!result.passed).then(|| hint_of(line).to_string());
        assert_eq!(result.hint, expected, "{result:?}");
    }
    assert_eq!(lines[1].measured, "2.00 s");
    assert_eq!(lines[1].required, "<= 200.0 ms");
    assert!(
        lines[3]
            .measured
            .starts_with("5.0% of 1200 (timeout: 52, http 500: 8)"),
        "{:?}",
        lines[3]
    );
    assert!(
        lines[5]
            .measured
            .contains("Sort > Hash Join > Seq Scan on posts"),
        "{:?}",
        lines[5]
    );
    assert_eq!(
        lines[6].measured,
        "create_post 1.00, feed 1.00, user_posts 1.00 (per request, 20 each; whole load 1.00)"
    );
    assert_eq!(lines[6].required, "<= 0.50 for each kind");
    assert!(
        lines[7].measured.contains("missing db_pool_idle"),
        "{:?}",
        lines[7]
    );

    let text = render(&report(&scenario, lines.clone()));
    for (line, result) in scenario.check.lines.iter().zip(&lines) {
        let shown = text.contains(&format!("  - {}: {}", result.label, hint_of(line)));
        assert_eq!(
            shown, !result.passed,
            "hint of {:?} shown: {shown}\n{text}",
            result.label
        );
    }
    assert!(
        text.contains("From the service's log:\n  ERROR request failed: pool timed out"),
        "{text}"
    );
    assert!(
        text.contains("\nFAIL: 2 of 9 lines pass (your code, scenario t1-01).\n"),
        "{text}"
    );
}

/// t1-01's connections line alone, judged on a whole load of 1,200 requests that opened
/// `opened` sessions and on each kind's probe.
fn judge_connections(opened: u64, per_kind: &[(&str, u64)]) -> LineResult {
    let scenario = t1_01();
    let line: Vec<CheckLine> = scenario
        .check
        .lines
        .into_iter()
        .filter(|l| matches!(l, CheckLine::Connections { .. }))
        .collect();
    let observations = Observations {
        overall: obs(1_200, 0, Duration::from_millis(12)),
        sessions_opened: Some(opened),
        sessions_per_kind: kinds(per_kind),
        ..Observations::default()
    };
    evaluate(&line, &observations).remove(0)
}

#[test]
fn one_kind_connecting_per_request_fails_even_when_the_whole_load_averages_under_the_line() {
    // The feed pooled (60% of the mix), user_posts and create_post still connecting: 480
    // sessions for 1,200 requests is 0.40, under 0.50, yet two endpoints have no pool.
    let line = judge_connections(480, &[("feed", 0), ("user_posts", 20), ("create_post", 20)]);
    assert!(!line.passed, "{line:?}");
    assert_eq!(
        line.measured,
        "create_post 1.00, user_posts 1.00, feed 0.00 (per request, 20 each; whole load 0.40)"
    );
    assert!(line.hint.is_some_and(|h| h.contains("every handler")));
}

#[test]
fn every_kind_pooled_passes_even_with_a_few_reopened_connections() {
    // A pool whose idle timeout closed connections may reopen a few during a probe: 4 of 20
    // (the probe's in-flight cap) is 0.20, under the line.
    let line = judge_connections(3, &[("feed", 0), ("user_posts", 4), ("create_post", 1)]);
    assert!(line.passed, "{line:?}");
    assert_eq!(line.hint, None);
    assert!(line
        .measured
        .starts_with("user_posts 0.20, create_post 0.05, feed 0.00"));
}

#[test]
fn a_kind_that_could_not_be_probed_fails_the_connections_line() {
    let scenario = t1_01();
    let connections: Vec<CheckLine> = scenario
        .check
        .lines
        .into_iter()
        .filter(|l| matches!(l, CheckLine::Connections { .. }))
        .collect();
    let mut observations = Observations {
        overall: obs(1_200, 0, Duration::from_millis(12)),
        sessions_opened: Some(0),
        sessions_per_kind: kinds(&[("feed", 0), ("user_posts", 0)]),
        ..Observations::default()
    };
    observations
        .sessions_per_kind
        .insert("create_post".to_string(), None);
    let line = evaluate(&connections, &observations).remove(0);
    assert!(!line.passed, "{line:?}");
    assert!(
        line.measured.starts_with("create_post not measured, "),
        "{line:?}"
    );
    // A probe that sent nothing is no evidence of a pool either.
    observations.sessions_per_kind.insert(
        "create_post".to_string(),
        Some(KindSessions {
            sessions: 0,
            requests: 0,
        }),
    );
    assert!(!evaluate(&connections, &observations).remove(0).passed);
    // Nor is no probe at all.
    observations.sessions_per_kind.clear();
    let none = evaluate(&connections, &observations).remove(0);
    assert!(!none.passed);
    assert_eq!(none.measured, "not measured");
}

#[test]
fn index_of_any_name_read_backward_passes_the_plan_line() {
    let f = facts(PLAN_INDEX_BACKWARD);
    assert!(
        f.indexed.contains("posts") && f.indexed.contains("users"),
        "{f:?}"
    );
    assert!(f.seq_scanned.is_empty(), "{f:?}");
    assert!(!f.sorts);
    assert_eq!(
        f.outline,
        "Limit > Nested Loop > Index Scan Backward using posts_by_time on posts > Memoize > Index Scan using users_pkey on users"
    );
    let line = judge_plan(true, PLAN_INDEX_BACKWARD);
    assert!(line.passed, "{line:?}");
    assert_eq!(line.required, "index on posts, no sort");
}

#[test]
fn sequential_scan_and_sort_fail_the_plan_line() {
    let f = facts(PLAN_SEQ_SCAN_SORT);
    assert!(f.indexed.is_empty(), "{f:?}");
    assert_eq!(
        f.seq_scanned.iter().map(String::as_str).collect::<Vec<_>>(),
        ["posts", "users"]
    );
    assert!(f.sorts);
    assert!(
        !judge_plan(false, PLAN_SEQ_SCAN_SORT).passed,
        "a sequential scan fails even without no_sort"
    );
}

#[test]
fn bitmap_heap_scan_counts_as_index_use() {
    let f = facts(PLAN_BITMAP);
    assert!(f.indexed.contains("posts"), "{f:?}");
    assert_eq!(
        f.outline,
        "Bitmap Heap Scan on posts > Bitmap Index Scan using posts_user_id_idx"
    );
    assert!(judge_plan(true, PLAN_BITMAP).passed);
}

#[test]
fn plan_that_uses_the_index_but_still_sorts_fails_only_when_no_sort() {
    let f = facts(PLAN_BITMAP_THEN_SORT);
    assert!(f.indexed.contains("posts") && f.sorts, "{f:?}");
    let strict = judge_plan(true, PLAN_BITMAP_THEN_SORT);
    assert!(!strict.passed);
    assert_eq!(strict.hint.as_deref(), Some("Add an index."));
    assert!(judge_plan(false, PLAN_BITMAP_THEN_SORT).passed);
}

#[test]
fn plan_that_could_not_be_read_fails_and_says_why() {
    let observations = Observations {
        plans: BTreeMap::from([(
            "posts through an index".to_string(),
            Err("relation \"posts\" does not exist".to_string()),
        )]),
        ..Observations::default()
    };
    let line = evaluate(&[plan_line(false)], &observations).remove(0);
    assert!(!line.passed);
    assert_eq!(line.measured, "no plan: relation \"posts\" does not exist");
    let unmeasured = evaluate(&[plan_line(false)], &Observations::default()).remove(0);
    assert!(!unmeasured.passed);
    assert_eq!(unmeasured.measured, "not measured");
}

#[test]
fn pool_budget_over_the_ceiling_fails() {
    let line = CheckLine::PoolBudget {
        reserved: 3,
        hint: "Shrink the pools.".to_string(),
    };
    let instances = |maxes: &[u32]| Observations {
        metrics: maxes
            .iter()
            .map(|m| Some(PromText::parse(&format!("db_pool_max {m}\n"))))
            .collect(),
        max_connections: 50,
        ..Observations::default()
    };
    // Two instances of 30 each: 60 connections against 50 - 3 = 47.
    let over = evaluate(std::slice::from_ref(&line), &instances(&[30, 30])).remove(0);
    assert!(!over.passed, "{over:?}");
    assert_eq!(over.measured, "60 = 30 + 30 (per instance)");
    assert_eq!(over.required, "<= 47 (max_connections 50 - 3 reserved)");
    assert_eq!(over.hint.as_deref(), Some("Shrink the pools."));
    // Exactly at the ceiling fits.
    assert!(
        evaluate(std::slice::from_ref(&line), &instances(&[20, 27]))
            .remove(0)
            .passed
    );
    // An instance that exports no pool size cannot be counted, so the line fails.
    let mut partial = instances(&[10]);
    partial.metrics.push(None);
    assert!(
        !evaluate(std::slice::from_ref(&line), &partial)
            .remove(0)
            .passed
    );
}

#[test]
fn empty_run_fails_latency_lines_rather_than_passing_them() {
    let scenario = t1_01();
    let empty = Observations {
        metrics: vec![Some(PromText::parse(POOL_METRICS))],
        sessions_opened: Some(0),
        max_connections: 50,
        plans: BTreeMap::from([(FEED_PLAN.to_string(), Ok(facts(PLAN_INDEX_BACKWARD)))]),
        ..Observations::default()
    };
    let lines = evaluate(&scenario.check.lines, &empty);
    for (line, result) in scenario.check.lines.iter().zip(&lines) {
        let measures_traffic = matches!(
            line,
            CheckLine::Slo { .. } | CheckLine::Connections { .. } | CheckLine::Answers
        );
        assert_eq!(result.passed, !measures_traffic, "{result:?}");
    }
    // Zero latency out of zero requests is no evidence of speed.
    assert_eq!(lines[1].label, "p95 latency");
    assert_eq!(lines[1].measured, "0 µs");
    assert!(!lines[1].passed);
    assert_eq!(lines[6].measured, "not measured");
    assert_eq!(lines[0].measured, "no answer verified");
}

#[test]
fn fmt_duration_picks_a_readable_unit() {
    assert_eq!(fmt_duration(Duration::ZERO), "0 µs");
    assert_eq!(fmt_duration(Duration::from_micros(850)), "850 µs");
    assert_eq!(fmt_duration(Duration::from_micros(999)), "999 µs");
    assert_eq!(fmt_duration(Duration::from_millis(1)), "1.0 ms");
    assert_eq!(fmt_duration(Duration::from_micros(12_340)), "12.3 ms");
    assert_eq!(fmt_duration(Duration::from_millis(200)), "200.0 ms");
    assert_eq!(fmt_duration(Duration::from_secs(1)), "1.00 s");
    assert_eq!(fmt_duration(Duration::from_millis(2_000)), "2.00 s");
    assert_eq!(fmt_duration(Duration::from_secs(90)), "90.00 s");
}

/// EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of a category + price search through an index
/// whose columns are in the wrong order, (price_cents, category): no Seq Scan, no Sort, but
/// it walks the whole price range to find one category's rows. Buffers are cumulative, so
/// the top node's counts are the plan's.
const PLAN_ANALYZED_WRONG_ORDER: &str = r#"[{"Plan": {
  "Node Type": "Limit", "Actual Rows": 50, "Shared Hit Blocks": 280, "Shared Read Blocks": 7,
  "Plans": [{
    "Node Type": "Index Scan", "Parent Relationship": "Outer", "Scan Direction": "Forward",
    "Index Name": "products_price_category_idx", "Relation Name": "products", "Alias": "products",
    "Actual Rows": 50, "Shared Hit Blocks": 280, "Shared Read Blocks": 7}]
}, "Planning": {"Shared Hit Blocks": 120}, "Execution Time": 1.2}]"#;

/// The same search through (category, price_cents): 50 heap pages and a few index pages.
const PLAN_ANALYZED_RIGHT_ORDER: &str = r#"[{"Plan": {
  "Node Type": "Limit", "Actual Rows": 50, "Shared Hit Blocks": 53, "Shared Read Blocks": 0,
  "Plans": [{
    "Node Type": "Index Scan", "Parent Relationship": "Outer", "Scan Direction": "Forward",
    "Index Name": "products_category_price_idx", "Relation Name": "products", "Alias": "products",
    "Actual Rows": 50, "Shared Hit Blocks": 53, "Shared Read Blocks": 0}]
}, "Execution Time": 0.2}]"#;

/// An INSERT's plan (no index to use, only pages to touch), EXPLAIN ANALYZEd.
const PLAN_ANALYZED_INSERT: &str = r#"[{"Plan": {
  "Node Type": "ModifyTable", "Operation": "Insert", "Relation Name": "orders",
  "Shared Hit Blocks": 20, "Shared Read Blocks": 0,
  "Plans": [{"Node Type": "Index Scan", "Index Name": "products_pkey", "Relation Name": "products",
             "Shared Hit Blocks": 5}]
}}]"#;

fn buffers_line(uses_index_on: Option<&str>, max_buffers: u64) -> CheckLine {
    CheckLine::Plan {
        name: "pages".to_string(),
        query: "SELECT 1".to_string(),
        uses_index_on: uses_index_on.map(str::to_string),
        no_sort: uses_index_on.is_some(),
        max_buffers: Some(max_buffers),
        hint: "Read fewer pages.".to_string(),
    }
}

fn judge_buffers(line: CheckLine, plan: Result<PlanFacts, String>) -> LineResult {
    let observations = Observations {
        plans: BTreeMap::from([("pages".to_string(), plan)]),
        ..Observations::default()
    };
    evaluate(&[line], &observations).remove(0)
}

#[test]
fn plan_facts_read_the_buffers_of_the_top_node_only_when_analyzed() {
    assert_eq!(facts(PLAN_ANALYZED_WRONG_ORDER).buffers, Some(287));
    assert_eq!(facts(PLAN_ANALYZED_RIGHT_ORDER).buffers, Some(53));
    assert_eq!(
        facts(PLAN_INDEX_BACKWARD).buffers,
        None,
        "plain EXPLAIN has no buffer counts"
    );
}

#[test]
fn wrong_column_order_passes_index_and_sort_but_fails_on_buffers() {
    let wrong = judge_buffers(
        buffers_line(Some("products"), 120),
        Ok(facts(PLAN_ANALYZED_WRONG_ORDER)),
    );
    assert!(!wrong.passed, "{wrong:?}");
    assert_eq!(wrong.required, "index on products, no sort, <= 120 buffers");
    assert!(wrong.measured.ends_with("(287 buffers)"), "{wrong:?}");
    assert!(
        wrong.measured.contains("products_price_category_idx"),
        "{wrong:?}"
    );
    assert_eq!(wrong.hint.as_deref(), Some("Read fewer pages."));

    let right = judge_buffers(
        buffers_line(Some("products"), 120),
        Ok(facts(PLAN_ANALYZED_RIGHT_ORDER)),
    );
    assert!(right.passed, "{right:?}");
    assert_eq!(right.hint, None);
}

#[test]
fn a_buffers_only_line_judges_an_insert_by_the_pages_it_touches() {
    let line = buffers_line(None, 15);
    let few = judge_buffers(line.clone(), Ok(facts(PLAN_ANALYZED_INSERT)));
    assert!(!few.passed, "20 pages is over 15: {few:?}");
    assert_eq!(few.required, "<= 15 buffers");
    let many = judge_buffers(buffers_line(None, 25), Ok(facts(PLAN_ANALYZED_INSERT)));
    assert!(many.passed, "{many:?}");
    // No counts (the plan was not analyzed) or no plan at all: the line cannot pass.
    assert!(!judge_buffers(line.clone(), Ok(facts(PLAN_INDEX_BACKWARD))).passed);
    let failed = judge_buffers(line, Err("relation \"orders\" does not exist".to_string()));
    assert!(
        !failed.passed && failed.measured.starts_with("no plan"),
        "{failed:?}"
    );
}

fn balance_line() -> CheckLine {
    CheckLine::Balance {
        min_instances: 2,
        tolerance: 0.2,
        hint: "spread the load".to_string(),
    }
}

fn served(counts: &[Option<f64>]) -> Observations {
    Observations {
        served: counts.to_vec(),
        ..healthy()
    }
}

#[test]
fn balance_passes_an_even_share_and_fails_one_instance_taking_everything() {
    let line = [balance_line()];
    let even = &evaluate(&line, &served(&[Some(400.0), Some(420.0), Some(380.0)]))[0];
    assert!(even.passed, "{even:?}");
    assert!(
        even.measured.contains("33% / 35% / 32%"),
        "{}",
        even.measured
    );
    // ip_hash with every request from 127.0.0.1: one instance serves them all.
    let hashed = &evaluate(&line, &served(&[Some(0.0), Some(1_200.0), Some(0.0)]))[0];
    assert!(
        !hashed.passed && hashed.measured.contains("0% / 100% / 0%"),
        "{hashed:?}"
    );
    assert_eq!(hashed.hint.as_deref(), Some("spread the load"));
    // 30% off an even share is outside ±20%.
    let skewed = &evaluate(&line, &served(&[Some(520.0), Some(280.0), Some(400.0)]))[0];
    assert!(!skewed.passed, "{skewed:?}");
}

#[test]
fn balance_fails_a_single_instance_and_a_down_one() {
    let line = [balance_line()];
    let single = &evaluate(&line, &served(&[Some(1_200.0)]))[0];
    assert!(
        !single.passed && single.measured.starts_with("1 instance(s)"),
        "{single:?}"
    );
    let down = &evaluate(&line, &served(&[Some(600.0), None]))[0];
    assert!(!down.passed && down.measured.contains("down"), "{down:?}");
}

#[test]
fn a_down_instance_fails_instances_up_and_is_named() {
    let line = [CheckLine::InstancesUp {
        hint: "restart it".to_string(),
    }];
    let mut obs = Observations {
        metrics: vec![
            Some(PromText::parse("db_pool_max 8\n")),
            None,
            Some(PromText::parse("db_pool_max 8\n")),
        ],
        down: vec!["instance 2: connection refused".to_string()],
        ..Observations::default()
    };
    let down = &evaluate(&line, &obs)[0];
    assert!(!down.passed, "{down:?}");
    assert_eq!(down.measured, "2/3 (instance 2: connection refused)");
    assert_eq!(down.required, "3/3");
    obs.metrics[1] = Some(PromText::parse("db_pool_max 8\n"));
    obs.down.clear();
    assert!(evaluate(&line, &obs)[0].passed);
}

#[test]
fn refused_connections_are_judged_by_count_and_unmeasured_fails() {
    let line = [CheckLine::RefusedConnections {
        max: 0,
        hint: "fit the pools".to_string(),
    }];
    let with = |n: Option<u64>| Observations {
        refused_connections: n,
        ..Observations::default()
    };
    assert!(evaluate(&line, &with(Some(0)))[0].passed);
    let refused = &evaluate(&line, &with(Some(4_402)))[0];
    assert!(!refused.passed && refused.measured == "4402", "{refused:?}");
    assert!(!evaluate(&line, &with(None))[0].passed);
}

#[test]
fn a_pool_that_waits_longer_than_the_client_fails_the_acquire_timeout_line() {
    let line = CheckLine::AcquireTimeout {
        client_timeout: Duration::from_secs(3),
        hint: "Wait less than the client.".to_string(),
    };
    let instances = |timeouts: &[Option<f64>]| Observations {
        metrics: timeouts
            .iter()
            .map(|t| {
                Some(PromText::parse(&match t {
                    Some(t) => format!("db_pool_acquire_timeout_seconds {t}\n"),
                    None => "db_pool_max 8\n".to_string(),
                }))
            })
            .collect(),
        ..Observations::default()
    };
    let judge = |obs: &Observations| evaluate(std::slice::from_ref(&line), obs).remove(0);
    let ok = judge(&instances(&[Some(0.5), Some(0.5), Some(1.0)]));
    assert!(ok.passed, "{ok:?}");
    assert_eq!(ok.measured, "500.0 ms, 500.0 ms, 1.00 s (per instance)");
    assert_eq!(ok.required, "< 3.00 s (the client's timeout)");
    // An hour on one instance is enough to hang requests there.
    let hour = judge(&instances(&[Some(0.5), Some(3600.0)]));
    assert!(
        !hour.passed && hour.measured.contains("3600.00 s"),
        "{hour:?}"
    );
    assert_eq!(hour.hint.as_deref(), Some("Wait less than the client."));
    // Equal to the client's timeout is a race the client loses half the time.
    assert!(!judge(&instances(&[Some(3.0)])).passed);
    // Not exported (a pool that is not the kit's, or none): it cannot be vouched for.
    let unknown = judge(&instances(&[None]));
    assert!(
        !unknown.passed && unknown.measured == "not exported",
        "{unknown:?}"
    );
    // A down instance is not a pass either.
    let mut down = instances(&[Some(0.5)]);
    down.metrics.push(None);
    assert!(!judge(&down).passed);
    assert!(!judge(&Observations::default()).passed);
}

#[test]
fn a_wrong_answer_fails_the_answers_line_with_the_request_the_answer_and_the_right_one() {
    let scenario = t1_01();
    let mut obs = healthy();
    let mut answers = right_answers();
    answers.insert(
        "feed".to_string(),
        KindAnswers {
            checked: 10,
            wrong: 10,
            example: Some(WrongAnswer {
                request: "GET /feed".to_string(),
                answer: "200 [{\"id\":999}]".to_string(),
                expected: Some("posts 12, 11".to_string()),
                hint: "The feed must be the 20 newest posts.".to_string(),
            }),
        },
    );
    obs.answers = Ok(answers);
    let lines = evaluate(&scenario.check.lines, &obs);
    let line = lines.iter().find(|l| l.label == "right answers").unwrap();
    assert!(!line.passed);
    assert_eq!(line.measured, "wrong: feed 10 of 10");
    assert_eq!(
        line.hint.as_deref(),
        Some(
            "feed: GET /feed answered 200 [{\"id\":999}]; right: posts 12, 11. The feed must be \
             the 20 newest posts."
        )
    );
    assert!(lines.iter().filter(|l| !l.passed).count() == 1, "{lines:?}");
}

#[test]
fn answers_that_could_not_be_verified_or_never_came_fail_the_line() {
    let scenario = t1_01();
    let mut obs = healthy();
    obs.answers = Err("connect to the check's database: refused".to_string());
    let line = evaluate(&scenario.check.lines, &obs).remove(0);
    assert_eq!((line.label.as_str(), line.passed), ("right answers", false));
    assert!(line.hint.unwrap().contains("refused"));
    let mut answers = right_answers();
    answers.get_mut("create_post").unwrap().checked = 0;
    obs.answers = Ok(answers);
    let line = evaluate(&scenario.check.lines, &obs).remove(0);
    assert!(!line.passed);
    assert_eq!(line.measured, "no answer from create_post");
}

#[test]
fn the_instances_must_serve_what_the_load_got_answered() {
    let line = CheckLine::Served {
        min_ratio: 0.95,
        hint: "Something in front answers.".to_string(),
    };
    let mut obs = healthy();
    obs.served = vec![Some(400.0), Some(400.0), Some(400.0)];
    let ok = evaluate(std::slice::from_ref(&line), &obs).remove(0);
    assert!(ok.passed, "{ok:?}");
    assert_eq!(ok.measured, "1200 served for 1200 answers (all)");
    obs.served = vec![Some(20.0), Some(17.0), Some(13.0)];
    let cached = evaluate(std::slice::from_ref(&line), &obs).remove(0);
    assert!(!cached.passed);
    assert_eq!(cached.measured, "50 served for 1200 answers (4%)");
    assert_eq!(cached.hint.as_deref(), Some("Something in front answers."));
    obs.served = vec![Some(600.0), None];
    assert!(!evaluate(std::slice::from_ref(&line), &obs)[0].passed);
}

#[test]
fn a_key_called_more_than_allowed_fails_the_dependency_line_by_name() {
    let line = CheckLine::DependencyCalls {
        max_per_key: 1,
        hint: "Charged twice.".to_string(),
    };
    let mut obs = healthy();
    let mut calls = DependencyCalls {
        name: "payments".to_string(),
        key: "job_id".to_string(),
        calls: 1300,
        keys: 1300,
        most: Some(("17".to_string(), 1)),
        fault: None,
    };
    obs.dependency_calls = Some(calls.clone());
    let once = evaluate(std::slice::from_ref(&line), &obs).remove(0);
    assert!(once.passed, "{once:?}");
    assert_eq!(once.label, "payments calls per job_id");
    calls.most = Some(("17".to_string(), 3));
    calls.keys = 1100;
    obs.dependency_calls = Some(calls);
    let twice = evaluate(std::slice::from_ref(&line), &obs).remove(0);
    assert!(!twice.passed);
    assert_eq!(twice.measured, "3 for job_id 17 (1300 calls, 1100 keys)");
    // A scheduled fault says what it did to the calls.
    let fault = sdlab_engine::catalog::DependencyFault {
        at: std::time::Duration::from_secs(9),
        lasting: std::time::Duration::from_secs(1),
        answer: sdlab_engine::catalog::FaultAnswer::Late(std::time::Duration::from_secs(3)),
    };
    obs.dependency_calls.as_mut().unwrap().fault = Some((fault, 31));
    let late = evaluate(std::slice::from_ref(&line), &obs).remove(0);
    assert_eq!(
        late.measured,
        "3 for job_id 17 (1300 calls, 1100 keys); 31 answered 3.0 s late at 9-10 s"
    );
    obs.dependency_calls = None;
    assert!(!evaluate(std::slice::from_ref(&line), &obs)[0].passed);
}

#[test]
fn without_the_load_only_the_lines_that_need_none_are_judged_and_the_verdict_never_passes() {
    let scenario = t1_01();
    let obs = Observations {
        load_ran: false,
        ..healthy()
    };
    let lines = evaluate(&scenario.check.lines, &obs);
    for (line, result) in scenario.check.lines.iter().zip(&lines) {
        assert_eq!(result.skipped, line.needs_load(), "{result:?}");
        if result.skipped {
            assert!(!result.passed && result.hint.is_none(), "{result:?}");
            assert_eq!(result.measured, "not measured (no load)");
        } else {
            assert!(result.passed, "{result:?}");
        }
    }
    // The healthy answers, plan and pool lines still judge; latency and connections wait.
    assert!(lines.iter().any(|l| l.label == FEED_PLAN && l.passed));
    assert!(lines.iter().any(|l| l.label == "p95 latency" && l.skipped));
    let text = render(&report(&scenario, lines));
    assert!(text.contains("NOT JUDGED: "), "{text}");
    assert!(
        text.contains("need the check load and were skipped"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("p95 latency ") && l.ends_with("SKIP")),
        "{text}"
    );
}
