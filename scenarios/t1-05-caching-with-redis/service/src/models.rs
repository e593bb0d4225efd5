//! The JSON shapes, and the three queries that build a product page.

use sdlab_kit::{AppError, Db};
use serde::{Deserialize, Serialize};

/// A product as the back office sees it.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub price_cents: i32,
}

/// `{"price_cents": 1999}`.
#[derive(Debug, Deserialize)]
pub struct NewPrice {
    pub price_cents: i32,
}

/// What a shopper sees on a product's page.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProductPage {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub price_cents: i32,
    pub description: String,
    pub reviews: ReviewSummary,
    /// The three newest reviews, newest first.
    pub latest_reviews: Vec<Review>,
}

/// Every review of the product, added up.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct ReviewSummary {
    pub count: i64,
    /// The mean rating, to two decimals; none without reviews.
    pub average: Option<f64>,
    /// How many reviews gave 1, 2, 3, 4 and 5 stars.
    pub stars: Vec<i64>,
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct Review {
    pub id: i64,
    pub rating: i16,
    pub body: String,
}

#[derive(sqlx::FromRow)]
struct Details {
    id: i64,
    name: String,
    category: String,
    price_cents: i32,
    description: String,
}

/// Builds product `id`'s page from PostgreSQL: its row, the summary of all its reviews, and
/// the newest three.
pub async fn load_page(db: &Db, id: i64) -> Result<ProductPage, AppError> {
    let mut conn = db.conn().await?;
    let product = sqlx::query_as::<_, Details>(
        "SELECT id, name, category, price_cents, description FROM products WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound)?;
    let reviews = sqlx::query_as::<_, ReviewSummary>(
        "SELECT count(*) AS count,
                round(avg(rating), 2)::float8 AS average,
                ARRAY[count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2),
                      count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4),
                      count(*) FILTER (WHERE rating = 5)] AS stars
         FROM reviews
         WHERE product_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let latest_reviews = sqlx::query_as::<_, Review>(
        "SELECT id, rating, body FROM reviews
         WHERE product_id = $1
         ORDER BY created_at DESC
         LIMIT 3",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ProductPage {
        id: product.id,
        name: product.name,
        category: product.category,
        price_cents: product.price_cents,
        description: product.description,
        reviews,
        latest_reviews,
    })
}
