//! Rate limiting: a token bucket per shop, kept in Redis so that every instance of the API
//! draws from the same bucket. Each shop may send `RATE` requests per second on average and
//! up to `BURST` at once; beyond that it gets 429 Too Many Requests with `Retry-After`.
//!
//! The bucket lives in one Redis hash per client (`ratelimit:<client>`: tokens left and when
//! they were counted), and one Lua script refills and takes a token atomically: Redis runs a
//! script alone, so two instances cannot both take the last token.

use crate::app::AppState;
use crate::client::client_id;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sdlab_kit::redis;

/// Requests per second a shop may send on average.
pub const RATE: u32 = 20;
/// Requests a shop may send at once after a quiet spell.
pub const BURST: u32 = 40;

/// SOLUTION (rate limit): KEYS[1] the bucket, ARGV[1] tokens per second, ARGV[2] the bucket's size. Returns 1 when
/// a token was taken, 0 when the bucket is empty. The clock is Redis's own (TIME), so the
/// instances' clocks do not matter.
const TAKE_TOKEN: &str = r"
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now_ms
tokens = math.min(burst, tokens + (now_ms - at) * rate / 1000)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return taken
";

/// Middleware: takes a token from the asking shop's bucket, or answers 429. A request
/// without a client ID goes on (the handler answers 400). When Redis does not answer, the
/// request goes on too: the limiter protects the API, it must not take it down (fail open).
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(client) = client_id(request.headers()) else {
        return next.run(request).await;
    };
    let take = redis::cmd("EVAL")
        .arg(TAKE_TOKEN)
        .arg(1)
        .arg(format!("ratelimit:{client}"))
        .arg(RATE)
        .arg(BURST)
        .clone();
    match state.cache.query::<i64>(&take).await {
        Ok(1) => next.run(request).await,
        Ok(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "rate limit exceeded: at most 20 requests per second per client",
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(%client, "rate limiter unavailable, request let through: {e}");
            next.run(request).await
        }
    }
}
