//! The SQL console over HTTP. Read-only unless the request says `"write": true`: the query
//! runs inside `BEGIN READ ONLY` ... `ROLLBACK` with a statement timeout, so SELECT, SHOW and
//! EXPLAIN (ANALYZE) of a SELECT work and nothing is changed. Statements that would end or
//! loosen that transaction (COMMIT, BEGIN, `SET transaction_read_only`, ...) are refused
//! before anything is sent. This guards against accidents; the API token is what keeps
//! strangers out.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::Json;

use super::model::{SqlRequest, SqlResponse, SqlResultView};
use super::{ApiError, ApiState};
use crate::progress::Progress;
use crate::sql;
use crate::DatabaseChoice;

/// How long a read-only query may run.
const READ_ONLY_TIMEOUT: &str = "30s";

pub(super) async fn sql(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Json<SqlResponse>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let Json(request) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"query\": \"...\"}}: {}",
            e.body_text()
        ))
    })?;
    let statements = split_statements(&request.query);
    if statements.is_empty() {
        return Err(ApiError::BadRequest("the query is empty".to_string()));
    }
    let text = if request.write {
        request.query.clone()
    } else {
        if let Some(refused) = statements.iter().find_map(|s| refuse_in_read_only(s)) {
            return Err(ApiError::BadRequest(refused));
        }
        wrap_read_only(&statements)
    };
    let url = state.runner.database_url(&scenario.id).await;
    if url.is_none() && state.runner.is_active(&scenario.id).await {
        return Err(ApiError::Conflict(format!(
            "{} is starting; the console can use its database once it is running",
            scenario.id
        )));
    }
    let results = match url {
        Some(url) => sql::run(&url, &text).await?,
        None => {
            // Not running here: attach to the lab running it elsewhere, or start PostgreSQL
            // for this query, as `sdlab sql` does.
            let (lab, text) = (Arc::clone(&state.lab), text.clone());
            super::on_own_runtime("run the query", move || async move {
                let db = lab.database(&scenario, &Progress::none()).await?;
                let results = sql::run(&db.url(DatabaseChoice::Learner), &text).await;
                db.shutdown().await;
                Ok::<_, ApiError>(results?)
            })
            .await??
        }
    };
    let results = if request.write {
        results
    } else {
        // Drop the results of BEGIN, SET LOCAL and ROLLBACK.
        let end = results.len().saturating_sub(1);
        results.into_iter().take(end).skip(2).collect()
    };
    Ok(Json(SqlResponse {
        read_only: !request.write,
        results: results.into_iter().map(SqlResultView::from).collect(),
    }))
}

/// The query's statements wrapped in a read-only transaction that is always rolled back.
fn wrap_read_only(statements: &[String]) -> String {
    let mut text =
        format!("BEGIN READ ONLY;\nSET LOCAL statement_timeout = '{READ_ONLY_TIMEOUT}';\n");
    for s in statements {
        text.push_str(s);
        // A newline first: the statement may end in a `--` comment.
        text.push_str("\n;\n");
    }
    text.push_str("ROLLBACK;");
    text
}

/// Why `statement` may not run in read-only mode, if it may not.
pub(super) fn refuse_in_read_only(statement: &str) -> Option<String> {
    let code = strip_comments(statement).to_ascii_lowercase();
    let words: Vec<&str> = code.split_whitespace().collect();
    let first = words.first().copied().unwrap_or_default();
    let says = |w: &str| code.contains(w);
    let refused = match first {
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "prepare" => true,
        "set" | "reset" => {
            says("read_only")
                || says("read write")
                || says("characteristics")
                || says("session authorization")
                || says("role")
                || words.get(1) == Some(&"all")
        }
        "copy" => says("program"),
        _ => false,
    };
    refused.then(|| {
        format!(
            "`{}` is not allowed in the read-only console: queries run in a read-only transaction that is rolled back. Send \"write\": true to run it as written.",
            statement.trim()
        )
    })
}

/// Splits SQL into statements at `;` outside quotes, dollar quotes and comments; drops
/// statements that hold only whitespace and comments.
pub(super) fn split_statements(sql: &str) -> Vec<String> {
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
fn strip_comments(s: &str) -> String {
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
    fn read_only_mode_refuses_what_would_end_its_transaction() {
        for s in [
            "COMMIT",
            "end",
            "/* x */ begin",
            "set transaction_read_only = off",
            "RESET ALL",
            "copy t to program 'x'",
        ] {
            assert!(refuse_in_read_only(s).is_some(), "{s} should be refused");
        }
        for s in [
            "select 1",
            "explain analyze select * from posts",
            "set enable_seqscan = off",
            "show work_mem",
        ] {
            assert!(refuse_in_read_only(s).is_none(), "{s} should be allowed");
        }
    }
}
