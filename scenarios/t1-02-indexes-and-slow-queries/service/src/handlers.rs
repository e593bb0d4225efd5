//! The five endpoints. Each runs one SQL query; the code is correct, and what makes a
//! query fast or slow is whether PostgreSQL has an index that fits it.

use crate::app::AppState;
use crate::models::{EmailQuery, NewOrder, Order, Product, ProductSearch, StatusCount, User};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use sdlab_kit::AppError;

/// A basket line of more than this many items is refused.
const MAX_QUANTITY: i32 = 100;

/// `GET /users/lookup?email=...`: the account for an email, whatever its case. People type
/// "Maria@Example.com" at sign-up and "maria@example.com" at login; both must find it.
pub async fn user_by_email(
    State(state): State<AppState>,
    Query(q): Query<EmailQuery>,
) -> Result<Json<User>, AppError> {
    let mut conn = state.db.conn().await?;
    let user = sqlx::query_as::<_, User>(
        "SELECT id, email, name
         FROM users
         WHERE lower(email) = lower($1)",
    )
    .bind(q.email.trim())
    .fetch_optional(&mut *conn)
    .await?;
    user.map(Json).ok_or(AppError::NotFound)
}

/// `GET /users/{id}/orders`: the user's 20 most recent orders, newest first.
pub async fn order_history(
    State(state): State<AppState>,
    Path(user_id): Path<i64>,
) -> Result<Json<Vec<Order>>, AppError> {
    let mut conn = state.db.conn().await?;
    let orders = sqlx::query_as::<_, Order>(
        "SELECT id, user_id, product_id, quantity, total_cents, status, created_at
         FROM orders
         WHERE user_id = $1
         ORDER BY created_at DESC
         LIMIT 20",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(orders))
}

/// `GET /products?category=...&min_cents=...&max_cents=...`: the 50 cheapest products of a
/// category within a price range, cheapest first.
pub async fn product_search(
    State(state): State<AppState>,
    Query(q): Query<ProductSearch>,
) -> Result<Json<Vec<Product>>, AppError> {
    let min = q.min_cents.unwrap_or(0);
    let max = q.max_cents.unwrap_or(i32::MAX);
    if min > max {
        return Err(AppError::BadRequest(
            "min_cents must not exceed max_cents".to_string(),
        ));
    }
    let mut conn = state.db.conn().await?;
    let products = sqlx::query_as::<_, Product>(
        "SELECT id, category, name, price_cents
         FROM products
         WHERE category = $1 AND price_cents BETWEEN $2 AND $3
         ORDER BY price_cents
         LIMIT 50",
    )
    .bind(&q.category)
    .bind(min)
    .bind(max)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(products))
}

/// `GET /orders/summary`: for the back office, how many orders are in each status and what
/// they are worth. It reads every order by nature; it runs a few times a minute, not per
/// customer click.
pub async fn status_summary(
    State(state): State<AppState>,
) -> Result<Json<Vec<StatusCount>>, AppError> {
    let mut conn = state.db.conn().await?;
    let rows = sqlx::query_as::<_, StatusCount>(
        "SELECT status, count(*) AS orders, sum(total_cents)::bigint AS total_cents
         FROM orders
         GROUP BY status
         ORDER BY status",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(rows))
}

/// `POST /orders`: places an order at the product's current price and answers 201 with it.
pub async fn create_order(
    State(state): State<AppState>,
    Json(new): Json<NewOrder>,
) -> Result<(StatusCode, Json<Order>), AppError> {
    if !(1..=MAX_QUANTITY).contains(&new.quantity) {
        return Err(AppError::BadRequest(format!(
            "quantity must be 1 to {MAX_QUANTITY}"
        )));
    }
    let mut conn = state.db.conn().await?;
    // One statement reads the price and inserts, so the total cannot drift from the price
    // and the reply needs no second round trip. Every index on orders gets a new entry here.
    let order = sqlx::query_as::<_, Order>(
        "INSERT INTO orders (user_id, product_id, quantity, total_cents)
         SELECT $1, p.id, $3, $3 * p.price_cents
         FROM products p
         WHERE p.id = $2
         RETURNING id, user_id, product_id, quantity, total_cents, status, created_at",
    )
    .bind(new.user_id)
    .bind(new.product_id)
    .bind(new.quantity)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            AppError::BadRequest(format!("no user with id {}", new.user_id))
        }
        _ => AppError::from(err),
    })?
    .ok_or_else(|| AppError::BadRequest(format!("no product with id {}", new.product_id)))?;
    Ok((StatusCode::CREATED, Json(order)))
}
