//! Query plans: EXPLAIN (FORMAT JSON), or EXPLAIN ANALYZE with buffers for page-counting
//! lines, reduced to the `PlanFacts` plan lines judge.

use super::PlanFacts;

/// EXPLAIN (FORMAT JSON) of `query` on `database_url`, reduced to the facts checks judge.
///
/// With `analyze`, the statement runs: EXPLAIN (ANALYZE, BUFFERS) in one transaction that is
/// then rolled back (so an INSERT leaves nothing behind): once to warm up (the pages a fresh
/// session reads to load the catalog are not the query's work), then [`MEASURED_RUNS`] times,
/// keeping the run with the median page count. A write now and then lands on a full page and
/// splits it (or extends the table past dead rows a busy run left): the median ignores that.
pub async fn explain(database_url: &str, query: &str, analyze: bool) -> Result<PlanFacts, String> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(connection);
    let db_message = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    let result = async {
        if !analyze {
            let messages = client
                .simple_query(&format!("EXPLAIN (FORMAT JSON) {query}"))
                .await
                .map_err(db_message)?;
            return facts_of(&messages);
        }
        client
            .simple_query("BEGIN; SET LOCAL statement_timeout = '10s'")
            .await
            .map_err(db_message)?;
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}");
        client.simple_query(&sql).await.map_err(db_message)?;
        let mut runs = Vec::with_capacity(MEASURED_RUNS);
        for _ in 0..MEASURED_RUNS {
            let messages = client.simple_query(&sql).await.map_err(db_message)?;
            runs.push(facts_of(&messages)?);
        }
        client.simple_query("ROLLBACK").await.map_err(db_message)?;
        runs.sort_by_key(|f| f.buffers);
        Ok(runs.swap_remove(MEASURED_RUNS / 2))
    }
    .await;
    drop(client);
    let _ = conn.await;
    result
}

/// How many EXPLAIN ANALYZE runs (after the warm-up) a page-counting plan line takes the median of.
const MEASURED_RUNS: usize = 5;

/// The facts of one `EXPLAIN (FORMAT JSON)` answer.
fn facts_of(messages: &[tokio_postgres::SimpleQueryMessage]) -> Result<PlanFacts, String> {
    let text = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or("EXPLAIN returned no rows")?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let root = json
        .get(0)
        .and_then(|p| p.get("Plan"))
        .ok_or("EXPLAIN output has no Plan")?;
    Ok(plan_facts(root))
}

/// Walks an EXPLAIN (FORMAT JSON) plan node tree.
pub fn plan_facts(root: &serde_json::Value) -> PlanFacts {
    let mut facts = PlanFacts::default();
    // A node's buffer counts include its children's, so the top node's are the plan's.
    let blocks = |key: &str| root.get(key).and_then(|v| v.as_u64());
    facts.buffers = match (blocks("Shared Hit Blocks"), blocks("Shared Read Blocks")) {
        (None, None) => None,
        (hit, read) => Some(hit.unwrap_or(0) + read.unwrap_or(0)),
    };
    let mut outline = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let kind = node
            .get("Node Type")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let relation = node.get("Relation Name").and_then(|v| v.as_str());
        let index = node.get("Index Name").and_then(|v| v.as_str());
        let backward = node.get("Scan Direction").and_then(|v| v.as_str()) == Some("Backward");
        let mut label = kind.to_string();
        if backward {
            label.push_str(" Backward");
        }
        if let Some(index) = index {
            label.push_str(&format!(" using {index}"));
        }
        if let Some(relation) = relation {
            label.push_str(&format!(" on {relation}"));
        }
        match kind {
            "Index Scan" | "Index Only Scan" => {
                if let Some(r) = relation {
                    facts.indexed.insert(r.to_string());
                }
            }
            "Bitmap Heap Scan" => {
                if let Some(r) = relation {
                    facts.indexed.insert(r.to_string());
                }
            }
            "Seq Scan" => {
                if let Some(r) = relation {
                    facts.seq_scanned.insert(r.to_string());
                }
            }
            "Sort" | "Incremental Sort" => facts.sorts = true,
            _ => {}
        }
        outline.push(label);
        if let Some(children) = node.get("Plans").and_then(|v| v.as_array()) {
            // Reverse so the first child is visited (and listed) first.
            stack.extend(children.iter().rev());
        }
    }
    facts.outline = outline.join(" > ");
    facts
}
