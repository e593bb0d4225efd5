//! The SQL and Redis consoles over HTTP, both read-only unless the request says
//! `"write": true`.
//!
//! SQL: the query
//! runs inside `BEGIN READ ONLY` ... `ROLLBACK` with a statement timeout, so SELECT, SHOW and
//! EXPLAIN (ANALYZE) of a SELECT work and nothing is changed. Statements that would end or
//! loosen that transaction (COMMIT, BEGIN, `SET transaction_read_only`, ...) are refused
//! before anything is sent.
//!
//! Redis: one command line to the scenario's running Redis; read-only refuses, before sending,
//! what `redis_console::refuse_in_read_only` names (the server's own `write` flag, and admin
//! commands that change the server). Redis runs only with the lab, so nothing is started for
//! it: a 409 says to start the scenario.
//!
//! This guards against accidents; the API token is what keeps strangers out.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::Json;

use super::model::{
    RedisRequest, RedisResponse, ReplicaRequest, ReplicaSampleView, SqlRequest, SqlResponse,
    SqlResultView,
};
use super::{ApiError, ApiState};
use crate::progress::Progress;
use crate::redis_console::{self, Access, ConsoleError};
use crate::sql::{self, split_statements, strip_comments};
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
    if request.replica
        && scenario
            .topology
            .postgres
            .as_ref()
            .map_or(0, |p| p.replicas)
            == 0
    {
        return Err(ApiError::BadRequest(format!(
            "{} has no replica ([topology.postgres] replicas = 1)",
            scenario.id
        )));
    }
    let url = match request.replica {
        // The learner's database on the replica: same name as on the primary.
        true => state.runner.targets(&scenario.id).await.and_then(|t| {
            let (_, database, _) = t.postgres?;
            Some(crate::lab::database_url_on(&t.replica?.0, &database))
        }),
        false => state.runner.database_url(&scenario.id).await,
    };
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
            let on_replica = request.replica;
            super::on_own_runtime("run the query", move || async move {
                let db = lab.database(&scenario, &Progress::none()).await?;
                let url = match on_replica {
                    true => db.replica_url(DatabaseChoice::Learner),
                    false => Some(db.url(DatabaseChoice::Learner)),
                };
                let results = match url {
                    Some(url) => sql::run(&url, &text).await,
                    None => {
                        db.shutdown().await;
                        return Err(ApiError::Conflict(format!(
                            "the running lab of {} has no replica: stop it and start again",
                            scenario.id
                        )));
                    }
                };
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
        // Only a write can have changed the schema (read-only runs are rolled back).
        note: request
            .write
            .then(|| sql::schema_note(&request.query))
            .flatten()
            .map(str::to_string),
    }))
}

pub(super) async fn redis(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Result<Json<RedisRequest>, JsonRejection>,
) -> Result<Json<RedisResponse>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let Json(request) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"command\": \"...\"}}: {}",
            e.body_text()
        ))
    })?;
    if scenario.topology.redis.is_none() {
        return Err(ApiError::BadRequest(format!(
            "{} has no Redis in its topology",
            scenario.id
        )));
    }
    // This server's lab, else one another sdlab process runs (its run state names it).
    let port = match state.runner.targets(&scenario.id).await {
        Some(targets) => targets.redis,
        None if state.runner.is_active(&scenario.id).await => {
            return Err(ApiError::Conflict(format!(
                "{} is starting; the console can reach its Redis once it is running",
                scenario.id
            )))
        }
        None => state
            .lab
            .live_state(&scenario)
            .and_then(|s| s.redis_url)
            .and_then(|url| redis_console::port_of(&url)),
    };
    let port = port.ok_or_else(|| ConsoleError::NotRunning {
        scenario: scenario.id.clone(),
    })?;
    let access = if request.write {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let reply = redis_console::run_as(port, &request.command, access).await?;
    Ok(Json(RedisResponse {
        read_only: !request.write,
        reply,
    }))
}

/// `POST .../replica` `{"apply_delay_ms": N}`: changes the running replica's apply delay (a lab
/// this server runs, else one another sdlab process runs) and answers with the replica's state.
pub(super) async fn replica(
    State(state): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Result<Json<ReplicaRequest>, JsonRejection>,
) -> Result<Json<ReplicaSampleView>, ApiError> {
    let scenario = state.lab.catalog.get(&id)?.clone();
    let Json(request) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"apply_delay_ms\": N}}: {}",
            e.body_text()
        ))
    })?;
    if scenario
        .topology
        .postgres
        .as_ref()
        .map_or(0, |p| p.replicas)
        == 0
    {
        return Err(ApiError::BadRequest(format!(
            "{} has no replica ([topology.postgres] replicas = 1)",
            scenario.id
        )));
    }
    if request.apply_delay_ms > 60_000 {
        return Err(ApiError::BadRequest(format!(
            "apply_delay_ms: at most 60000 (a minute), got {}",
            request.apply_delay_ms
        )));
    }
    let urls = match state.runner.targets(&scenario.id).await {
        Some(t) => t.postgres.map(|p| p.0).zip(t.replica.map(|r| r.0)),
        None if state.runner.is_active(&scenario.id).await => {
            return Err(ApiError::Conflict(format!(
                "{} is starting; its replica can be changed once it is running",
                scenario.id
            )))
        }
        None => state
            .lab
            .live_state(&scenario)
            .and_then(|s| s.postgres_url.zip(s.replica_url)),
    };
    let Some((primary, replica)) = urls else {
        return Err(ApiError::Conflict(format!(
            "{} is not running: start it, then change its replica",
            scenario.id
        )));
    };
    crate::lab::set_replica_delay(
        &replica,
        std::time::Duration::from_millis(request.apply_delay_ms),
    )
    .await?;
    let status = crate::metrics::replica_status(&primary, &replica)
        .await
        .map_err(|e| ApiError::Conflict(format!("the replica does not answer: {e}")))?;
    Ok(Json(ReplicaSampleView::from(&status)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
