//! Golden tests of scenario t1-02: the broken shop fails with the guide's symptoms (listings
//! that scan whole tables, latency in seconds, 503s), the solution and a differently named
//! correct fix pass, and both wrong fixes of CATALOG.md fail on the line that measures their
//! cost: the wrong column order on the pages the product search reads, indexing everything on
//! the pages each order placed touches.
//!
//! Latency lines have a 10x margin both ways (solution ~5 ms, broken > 1 s, budget 100 ms).
//! Page counts come from EXPLAIN (ANALYZE, BUFFERS) and do not depend on load: 53 vs 287
//! pages (line at 120) and 10 vs 20 (line at 15).

use std::path::Path;

use crate::harness::*;

const ID: &str = "t1-02";

fn dir() -> std::path::PathBuf {
    scenario_dir_of("t1-02-indexes-and-slow-queries")
}

fn check_code(code: &Path) -> (i32, String) {
    let (code, table, _) = check_scenario(&shared_home(), ID, &["--code", code.to_str().unwrap()]);
    (code, table)
}

const SEARCH_PLAN: &str = "product search uses an index";
const WRITE_PAGES: &str = "placing an order touches few pages";

#[test]
fn broken_shop_fails_with_slow_listings_that_scan_whole_tables() {
    // The untouched service, checked as code (a scratch database from the seed), so that
    // indexes typed into the learner's database by an earlier run cannot hide the symptom.
    let (code, table) = check_code(&dir().join("service"));
    assert_eq!(code, 1, "the broken service must fail the check");
    for request in ["order_history", "product_search", "user_by_email"] {
        assert!(
            !passes(&table, &format!("p95 latency of {request}")),
            "{table}"
        );
    }
    let errors = table_line(&table, "error rate");
    assert!(errors.ends_with("FAIL"), "{table}");
    assert!(
        errors.contains("http 503") || errors.contains("timeout"),
        "errors should name their kind: {errors}"
    );
    let history = table_line(&table, "order history uses an index");
    assert!(
        history.contains("Seq Scan on orders") && history.contains("Sort"),
        "{history}"
    );
    let search = table_line(&table, SEARCH_PLAN);
    assert!(
        search.contains("Seq Scan on products") && search.ends_with("FAIL"),
        "{search}"
    );
    assert!(
        table_line(&table, "login lookup uses an index").contains("Seq Scan on users"),
        "{table}"
    );
    // The pages-per-order line is not asserted here: after a broken run full of cancelled
    // inserts it measured 16 pages once (7 usually), so it says nothing about this symptom.
    assert!(
        table.contains("Hints:"),
        "failing lines come with hints:\n{table}"
    );
}

#[test]
fn solution_passes_every_line() {
    let (code, table, _) = check_scenario(&shared_home(), ID, &["--solution"]);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("PASS: 10 of 10 lines pass"), "{table}");
}

#[test]
fn other_names_and_a_third_column_pass_too() {
    // (user_id, created_at DESC), (category, price_cents, id) and the expression index, under
    // other names and in one file: the check judges plans and pages, not names.
    let code_dir = variant_of(&dir().join("solution"));
    for f in [
        "0001_order_history_index.sql",
        "0002_product_search_index.sql",
        "0003_email_lookup_index.sql",
    ] {
        std::fs::remove_file(code_dir.path().join("migrations").join(f)).unwrap();
    }
    std::fs::write(
        code_dir.path().join("migrations/0001_shop_indexes.sql"),
        "CREATE INDEX history ON orders (user_id, created_at DESC);\n\
         CREATE INDEX search ON products (category, price_cents, id);\n\
         CREATE INDEX login ON users (lower(email));\n",
    )
    .unwrap();
    let (code, table) = check_code(code_dir.path());
    assert_eq!(code, 0, "{table}");
    assert!(
        table_line(&table, SEARCH_PLAN).contains("using search on products"),
        "{table}"
    );
}

#[test]
fn wrong_column_order_fails_on_the_pages_the_search_reads() {
    // (price_cents, category): an Index Scan without a Sort, so "uses an index" alone would
    // pass; it walks the price range across all categories instead.
    let code_dir = variant_of(&dir().join("solution"));
    std::fs::write(
        code_dir
            .path()
            .join("migrations/0002_product_search_index.sql"),
        "CREATE INDEX products_price_category_idx ON products (price_cents, category);\n",
    )
    .unwrap();
    let (code, table) = check_code(code_dir.path());
    assert_eq!(code, 1, "{table}");
    let search = table_line(&table, SEARCH_PLAN);
    assert!(
        search.contains("products_price_category_idx") && !search.contains("Sort"),
        "{search}"
    );
    assert!(search.ends_with("FAIL"), "{search}");
    // Everything else is fixed and recognised as fixed.
    assert!(passes(&table, "order history uses an index"), "{table}");
    assert!(passes(&table, WRITE_PAGES), "{table}");
}

#[test]
fn indexing_everything_fails_on_the_pages_each_order_touches() {
    let code_dir = variant_of(&dir().join("solution"));
    std::fs::write(
        code_dir.path().join("migrations/0004_index_everything.sql"),
        "CREATE INDEX orders_status_idx ON orders (status);\n\
         CREATE INDEX orders_created_at_idx ON orders (created_at);\n\
         CREATE INDEX orders_product_id_idx ON orders (product_id);\n\
         CREATE INDEX orders_total_cents_idx ON orders (total_cents);\n\
         CREATE INDEX products_price_idx ON products (price_cents);\n\
         CREATE INDEX products_name_idx ON products (name);\n\
         CREATE INDEX users_name_idx ON users (name);\n",
    )
    .unwrap();
    let (code, table) = check_code(code_dir.path());
    assert_eq!(code, 1, "{table}");
    assert!(table_line(&table, WRITE_PAGES).ends_with("FAIL"), "{table}");
    // The reads are as fast as the solution's: the cost is all on the write path.
    assert!(passes(&table, SEARCH_PLAN), "{table}");
    assert!(passes(&table, "order history uses an index"), "{table}");
}
