//! Which shop is asking: every request carries its client ID in `X-Client-Id` (issued with
//! the shop's API credentials), e.g. `shop-3`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

/// The client ID of the shop that sent the request.
#[derive(Debug, Clone)]
pub struct ClientId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientId {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        client_id(&parts.headers).map(ClientId).ok_or((
            StatusCode::BAD_REQUEST,
            "the X-Client-Id header is required",
        ))
    }
}

/// The `X-Client-Id` header's value, when it is there and not empty.
pub fn client_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("x-client-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
