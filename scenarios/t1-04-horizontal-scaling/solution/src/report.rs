//! The category report: one small query, then a lot of work in Rust.
//!
//! PostgreSQL's part is an index lookup of ~200 rows (well under a millisecond). The cost is
//! here: every product line is formatted and signed, many rounds each, as a stand-in for
//! the pricing rules, currency formatting and PDF layout a real report does. That work needs
//! CPU, and one instance has only its share of one.

use crate::app::AppState;
use axum::extract::{Path, State};
use axum::Json;
use sdlab_kit::AppError;
use serde::Serialize;

/// Signing rounds per product line: what makes a report cost a few milliseconds of CPU.
const ROUNDS: u32 = 600;

#[derive(sqlx::FromRow)]
struct Product {
    id: i32,
    name: String,
    price_cents: i32,
    stock: i32,
}

#[derive(Serialize)]
pub struct Report {
    category: i32,
    products: usize,
    stock_value_cents: i64,
    /// A digest of every formatted line: proof the work was done, and a stable answer.
    digest: String,
}

/// `GET /reports/{category}`.
pub async fn category_report(
    State(state): State<AppState>,
    Path(category): Path<i32>,
) -> Result<Json<Report>, AppError> {
    let mut conn = state.db.conn().await?;
    let products: Vec<Product> = sqlx::query_as(
        "SELECT id, name, price_cents, stock FROM products WHERE category_id = $1 ORDER BY id",
    )
    .bind(category)
    .fetch_all(&mut *conn)
    .await?;
    // Give the connection back before the long part: the pool is for the database's work.
    drop(conn);
    if products.is_empty() {
        return Err(AppError::NotFound);
    }
    // CPU-bound work goes to the blocking pool, so it never stalls the async workers that
    // accept connections and answer /healthz.
    // (The semaphore is never closed, so acquiring only waits.)
    let _slot = state.cpu.acquire().await.ok();
    let report = tokio::task::spawn_blocking(move || build(category, &products))
        .await
        .expect("building a report does not panic");
    Ok(Json(report))
}

fn build(category: i32, products: &[Product]) -> Report {
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut stock_value_cents = 0i64;
    for p in products {
        stock_value_cents += i64::from(p.price_cents) * i64::from(p.stock);
        let line = format!(
            "{:>6} {:<24} {:>8.2} x {:>4}",
            p.id,
            p.name,
            f64::from(p.price_cents) / 100.0,
            p.stock
        );
        for round in 0..ROUNDS {
            for b in line.bytes().chain(round.to_le_bytes()) {
                digest ^= u64::from(b);
                digest = digest.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    Report {
        category,
        products: products.len(),
        stock_value_cents,
        digest: format!("{digest:016x}"),
    }
}
