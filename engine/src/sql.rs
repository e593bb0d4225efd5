//! The SQL console: runs what the learner types against the scenario's database with the
//! simple query protocol (so EXPLAIN ANALYZE, SHOW and several statements all work) and
//! renders the results as psql does.

/// One statement's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows affected, as PostgreSQL reports it (None for statements without a count).
    pub affected: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("cannot connect to the scenario's database: {0}")]
    Connect(String),
    #[error("ERROR: {message}{}", detail.as_deref().map(|d| format!("\nDETAIL: {d}")).unwrap_or_default())]
    Query {
        message: String,
        detail: Option<String>,
    },
}

/// Runs `sql` (one or more statements) and returns one result per statement.
pub async fn run(database_url: &str, sql: &str) -> Result<Vec<QueryResult>, SqlError> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| SqlError::Connect(e.to_string()))?;
    let conn = tokio::spawn(connection);
    let messages = client.simple_query(sql).await;
    drop(client);
    let _ = conn.await;
    let messages = messages.map_err(|e| match e.as_db_error() {
        Some(db) => SqlError::Query {
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
        },
        None => SqlError::Query {
            message: e.to_string(),
            detail: None,
        },
    })?;
    let mut results = Vec::new();
    let mut current = QueryResult::default();
    for m in messages {
        match m {
            tokio_postgres::SimpleQueryMessage::RowDescription(cols) => {
                current.columns = cols.iter().map(|c| c.name().to_string()).collect();
            }
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                if current.columns.is_empty() {
                    current.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                current.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => {
                current.affected = Some(n);
                results.push(std::mem::take(&mut current));
            }
            _ => {}
        }
    }
    Ok(results)
}

/// Renders a result like psql: aligned columns, a header rule, `(N rows)`. Single-column
/// results such as EXPLAIN's plan lines print without padding so long lines stay readable.
pub fn render(result: &QueryResult) -> String {
    if result.columns.is_empty() {
        return match result.affected {
            Some(n) => format!("OK ({n})\n"),
            None => "OK\n".to_string(),
        };
    }
    let cell = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut widths: Vec<usize> = result.columns.iter().map(|c| c.chars().count()).collect();
    for row in &result.rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(
                cell(v)
                    .lines()
                    .map(|l| l.chars().count())
                    .max()
                    .unwrap_or(0),
            );
        }
    }
    let single = result.columns.len() == 1;
    let mut out = String::new();
    let join = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                if single {
                    c.clone()
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        format!(" {}", padded.join(" | ")).trim_end().to_string()
    };
    out.push_str(&join(result.columns.clone()));
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+"),
    );
    out.push('\n');
    for row in &result.rows {
        out.push_str(&join(row.iter().map(cell).collect()));
        out.push('\n');
    }
    let n = result.rows.len();
    out.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_render_like_psql() {
        let r = QueryResult {
            columns: vec!["state".into(), "count".into()],
            rows: vec![
                vec![Some("active".into()), Some("3".into())],
                vec![None, Some("12".into())],
            ],
            affected: Some(2),
        };
        let text = render(&r);
        assert_eq!(
            text,
            " state  | count\n--------+-------\n active | 3\n        | 12\n(2 rows)\n"
        );
    }
}
