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

/// What the console says after a statement that changed the schema: the check runs on a
/// fresh copy of the seeded database with the code's `migrations/` (ARCHITECTURE.md, the
/// clean-database rule), so a change made only here does not count.
pub const NOT_IN_MIGRATIONS: &str = "this change is not in migrations/: the check will not see it. Put it in a file under migrations/ to keep it.";

/// The note `sdlab sql` and the UI console show after `sql` ran, when one of its statements
/// changes the schema (`changes_schema`). The one place that decides, for both front ends.
pub fn schema_note(sql: &str) -> Option<&'static str> {
    split_statements(sql)
        .iter()
        .any(|s| changes_schema(s))
        .then_some(NOT_IN_MIGRATIONS)
}

/// Whether `statement` changes the schema, by its first keywords after comments: CREATE,
/// ALTER, DROP (tables, indexes, functions, ...), COMMENT ON, GRANT, REVOKE, SECURITY LABEL.
/// Left out: `ALTER SYSTEM` (the server, which a check shares) and temporary tables.
pub fn changes_schema(statement: &str) -> bool {
    let code = strip_comments(statement).to_ascii_lowercase();
    let mut words = code
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty());
    match (words.next(), words.next()) {
        // Server settings (shared with the check) and session-only tables.
        (Some("alter"), Some("system")) | (Some("create"), Some("temp" | "temporary")) => false,
        (Some("create" | "alter" | "drop" | "grant" | "revoke"), _) => true,
        (Some("comment"), Some("on")) | (Some("security"), Some("label")) => true,
        _ => false,
    }
}

/// Splits SQL into statements at `;` outside quotes, dollar quotes and comments; drops
/// statements that hold only whitespace and comments.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        let (token, after) = match c {
            '\'' | '"' => {
                let end = quoted_end(rest, c);
                rest.split_at(end)
            }
            '-' if rest.starts_with("--") => rest.split_at(rest.find('\n').unwrap_or(rest.len())),
            '/' if rest.starts_with("/*") => {
                rest.split_at(rest.find("*/").map(|i| i + 2).unwrap_or(rest.len()))
            }
            '$' => match dollar_tag(rest) {
                Some(tag) => {
                    let body = &rest[tag.len()..];
                    let end = body
                        .find(tag)
                        .map(|i| tag.len() + i + tag.len())
                        .unwrap_or(rest.len());
                    rest.split_at(end)
                }
                None => rest.split_at(c.len_utf8()),
            },
            ';' => {
                if !strip_comments(&current).trim().is_empty() {
                    out.push(current.trim().to_string());
                }
                current.clear();
                rest = &rest[1..];
                continue;
            }
            _ => rest.split_at(c.len_utf8()),
        };
        current.push_str(token);
        rest = after;
    }
    if !strip_comments(&current).trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The end of a quoted run starting at `s[0] == quote` (a doubled quote continues it).
fn quoted_end(s: &str, quote: char) -> usize {
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            if chars.peek().is_some_and(|(_, n)| *n == quote) {
                chars.next();
                continue;
            }
            return i + 1;
        }
    }
    s.len()
}

/// `$tag$` or `$$` at the start of `s`.
fn dollar_tag(s: &str) -> Option<&str> {
    let inner = &s[1..];
    let end = inner.find('$')?;
    let tag = &inner[..end];
    tag.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| &s[..end + 2])
        .filter(|_| !tag.starts_with(|c: char| c.is_ascii_digit()))
}

/// The statement without `--` and `/* */` comments (quotes are left alone; good enough to
/// find a statement's leading keyword).
pub fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if rest.starts_with("--") {
            rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
        } else if rest.starts_with("/*") {
            rest = &rest[rest.find("*/").map(|i| i + 2).unwrap_or(rest.len())..];
        } else if rest.starts_with(['\'', '"']) {
            let q = rest.chars().next().unwrap_or('\'');
            let end = quoted_end(rest, q);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
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
    fn statements_split_at_semicolons_outside_quotes_and_comments() {
        let sql =
            "select ';' as a; -- one; two\nselect $$x;y$$, $t$;$t$ /* ; */; ;\n-- only a comment";
        assert_eq!(
            split_statements(sql),
            vec![
                "select ';' as a".to_string(),
                "-- one; two\nselect $$x;y$$, $t$;$t$ /* ; */".to_string()
            ]
        );
    }

    #[test]
    fn statements_that_change_the_schema_get_the_note_and_queries_do_not() {
        for s in [
            "CREATE INDEX posts_created_at ON posts (created_at DESC)",
            "-- by hand\n/* really */ create index concurrently i on posts(id)",
            "alter table posts add column x int",
            "DROP INDEX posts_created_at",
            "select 1; drop table users",
            "comment on table posts is 'x'",
            "GRANT SELECT ON posts TO PUBLIC",
        ] {
            assert_eq!(schema_note(s), Some(NOT_IN_MIGRATIONS), "{s}");
        }
        for s in [
            "select 1",
            "EXPLAIN ANALYZE SELECT * FROM posts",
            "-- create index i on posts(id)\nselect 'create table t'",
            "insert into posts (body) values ('drop table x')",
            "ALTER SYSTEM SET work_mem = '8MB'",
            "set enable_seqscan = off",
            "create temp table scratch (x int)",
        ] {
            assert_eq!(schema_note(s), None, "{s}");
        }
    }

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
