//! Product pages kept in Redis (cache-aside): `product-page:<id>` holds the page's JSON for
//! at most `TTL`, and a price change deletes it.
//!
//! Redis is an optimisation here, never the source of truth: when it is slow, full or down,
//! a lookup counts as a miss and the page comes from PostgreSQL (slower, still right), so
//! every failure is logged and swallowed instead of failing the request.

use crate::models::ProductPage;
use sdlab_kit::Cache;
use std::time::Duration;

/// How stale a page may be when something changes it behind the service's back (the
/// catalogue team's bulk edits go straight to PostgreSQL): the shop promises 5 minutes; a
/// minute keeps well inside it and still serves a hot page thousands of times.
const TTL: Duration = Duration::from_secs(60);

fn key(id: i64) -> String {
    format!("product-page:{id}")
}

/// The cached page, or None on a miss (or when Redis could not answer).
pub async fn get(cache: &Cache, id: i64) -> Option<ProductPage> {
    match cache.get(&key(id)).await {
        Ok(Some(json)) => match serde_json::from_str(&json) {
            Ok(page) => Some(page),
            // An old shape from a previous version of the code: rebuild it.
            Err(e) => {
                tracing::warn!(error = %e, id, "cached page unreadable; reading PostgreSQL");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, id, "page cache lookup failed; reading PostgreSQL");
            None
        }
    }
}

/// Keeps `page` for the next readers.
pub async fn put(cache: &Cache, page: &ProductPage) {
    let Ok(json) = serde_json::to_string(page) else {
        return;
    };
    if let Err(e) = cache.set_ex(&key(page.id), &json, TTL).await {
        tracing::warn!(error = %e, id = page.id, "page not cached");
    }
}

/// Drops product `id`'s page, so the next read builds it from the changed row.
pub async fn forget(cache: &Cache, id: i64) {
    if let Err(e) = cache.del(&key(id)).await {
        // The page stays stale until its TTL runs out: say so loudly.
        tracing::error!(error = %e, id, "stale page left in the cache until its TTL");
    }
}
