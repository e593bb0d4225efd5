//! The two endpoints: a product page for shoppers, a price change for the back office.

use crate::app::AppState;
use crate::models::{self, NewPrice, Product, ProductPage};
use crate::page_cache;
use axum::extract::{Path, State};
use axum::Json;
use sdlab_kit::AppError;

/// `GET /products/{id}`: the product with its review summary and latest reviews. Cache-aside:
/// Redis first; on a miss, build the page from PostgreSQL and keep it for the next shopper.
pub async fn product_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ProductPage>, AppError> {
    if let Some(page) = page_cache::get(&state.cache, id).await {
        return Ok(Json(page));
    }
    let page = models::load_page(&state.db, id).await?;
    page_cache::put(&state.cache, &page).await;
    Ok(Json(page))
}

/// `PUT /products/{id}` with `{"price_cents": 1999}`: a new price, shown from now on.
pub async fn update_price(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(new): Json<NewPrice>,
) -> Result<Json<Product>, AppError> {
    if new.price_cents <= 0 {
        return Err(AppError::BadRequest("price_cents must be above 0".into()));
    }
    let mut conn = state.db.conn().await?;
    let product = sqlx::query_as::<_, Product>(
        "UPDATE products SET price_cents = $2, updated_at = now()
         WHERE id = $1
         RETURNING id, name, category, price_cents",
    )
    .bind(id)
    .bind(new.price_cents)
    .fetch_optional(&mut *conn)
    .await?;
    // After the write is committed, not before: a page read in between would be cached
    // again with the old price. (A miss that read the old row just before the update can
    // still store it after this delete; the TTL bounds how long that page lives.)
    page_cache::forget(&state.cache, id).await;
    product.map(Json).ok_or(AppError::NotFound)
}
