//! The two endpoints: a product page for shoppers, a price change for the back office.

use crate::app::AppState;
use crate::models::{self, NewPrice, Product, ProductPage};
use axum::extract::{Path, State};
use axum::Json;
use sdlab_kit::AppError;

/// `GET /products/{id}`: the product with its review summary and latest reviews.
pub async fn product_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ProductPage>, AppError> {
    let page = models::load_page(&state.db, id).await?;
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
    product.map(Json).ok_or(AppError::NotFound)
}
