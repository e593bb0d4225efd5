//! The three endpoints: the global feed, one user's posts, and publishing a post.

use crate::app::AppState;
use crate::models::{NewPost, Post};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sdlab_kit::AppError;

/// Posts longer than this are refused: a feed item, not an essay.
const MAX_BODY_CHARS: usize = 1000;

/// `GET /feed`: the 20 newest posts from everyone, newest first.
///
/// SOLUTION (index): this query is fast only with an index on posts (created_at DESC)
/// (migrations/0001_feed_index.sql): PostgreSQL then reads the first 20 index entries and
/// stops, instead of scanning and sorting every post.
pub async fn feed(State(state): State<AppState>) -> Result<Json<Vec<Post>>, AppError> {
    // SOLUTION (pool): borrow a connection from the shared pool; it goes back when `conn`
    // is dropped at the end of the handler.
    let mut conn = state.db.conn().await?;
    let posts = sqlx::query_as::<_, Post>(
        "SELECT p.id, p.user_id, u.name AS author, p.body, p.created_at
         FROM posts p
         JOIN users u ON u.id = p.user_id
         ORDER BY p.created_at DESC
         LIMIT 20",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(posts))
}

/// `GET /users/{id}/posts`: that user's 20 newest posts (an empty list for an unknown user).
pub async fn user_posts(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
) -> Result<Json<Vec<Post>>, AppError> {
    let mut conn = state.db.conn().await?;
    let posts = sqlx::query_as::<_, Post>(
        "SELECT p.id, p.user_id, u.name AS author, p.body, p.created_at
         FROM posts p
         JOIN users u ON u.id = p.user_id
         WHERE p.user_id = $1
         ORDER BY p.created_at DESC
         LIMIT 20",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(posts))
}

/// `POST /posts`: stores a post and answers 201 with it, author included.
pub async fn create_post(
    State(state): State<AppState>,
    Json(new): Json<NewPost>,
) -> Result<(StatusCode, Json<Post>), AppError> {
    let body = new.body.trim();
    if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::BadRequest(format!(
            "body must be 1 to {MAX_BODY_CHARS} characters"
        )));
    }
    let mut conn = state.db.conn().await?;
    // One statement inserts and joins the author, so the reply needs no second round trip.
    let post = sqlx::query_as::<_, Post>(
        "WITH new AS (
             INSERT INTO posts (user_id, body) VALUES ($1, $2)
             RETURNING id, user_id, body, created_at
         )
         SELECT new.id, new.user_id, u.name AS author, new.body, new.created_at
         FROM new
         JOIN users u ON u.id = new.user_id",
    )
    .bind(new.user_id)
    .bind(body)
    .fetch_one(&mut *conn)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            AppError::BadRequest(format!("no user with id {}", new.user_id))
        }
        _ => AppError::from(err),
    })?;
    Ok((StatusCode::CREATED, Json(post)))
}
