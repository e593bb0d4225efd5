//! The two error types: [`KitError`] for starting a service, [`AppError`] for answering a
//! request.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt;

/// Why a service could not start (or stopped serving). Returned from `main`, so its
/// `Debug` prints the same sentence as its `Display` rather than a struct dump.
#[derive(thiserror::Error)]
pub enum KitError {
    /// An environment variable is missing or malformed.
    #[error(
        "environment variable {var} {}: expected {expected}",
        describe_found(found)
    )]
    Config {
        var: &'static str,
        expected: &'static str,
        /// The value found, or `None` when the variable is not set.
        found: Option<String>,
    },
    /// The database could not be reached when the pool was created.
    #[error("could not connect to the database at {url}: {source}")]
    DbConnect {
        /// The URL with any password removed.
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// Redis could not be reached when the [`crate::Cache`] was created.
    #[cfg(feature = "redis")]
    #[error("could not connect to Redis at {url}: {source}")]
    CacheConnect {
        /// The URL with any password removed.
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// The listening socket could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

fn describe_found(found: &Option<String>) -> String {
    match found {
        None => "is not set".to_owned(),
        Some(value) => format!("is {value:?}"),
    }
}

impl fmt::Debug for KitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An error a handler returns with `?`. It logs the cause for the operator and sends the
/// client only a status and a short plain message, never the internals (SQL, hostnames).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Any database failure; the status depends on the kind (see [`AppError::status`]).
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The requested thing does not exist.
    #[error("not found")]
    NotFound,
    /// The request is malformed; the message is shown to the client, so keep it free of
    /// internals.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A Redis command failed (down, timed out, or refused a write at `maxmemory`):
    /// 503 "cache unavailable".
    #[cfg(feature = "redis")]
    #[error("cache error: {0}")]
    Cache(#[from] crate::cache::CacheError),
}

/// PostgreSQL's SQLSTATE for "sorry, too many clients already" (max_connections reached).
const TOO_MANY_CONNECTIONS: &str = "53300";

impl AppError {
    /// 503 when the database is saturated (no pooled connection within the acquire timeout,
    /// or the server refused a new connection), because that is load and a retry later may
    /// succeed; 503 when the cache failed, for the same reason; 404 for a missing row; 500
    /// for everything else.
    pub fn status(&self) -> StatusCode {
        match self {
            #[cfg(feature = "redis")]
            AppError::Cache(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(err) if is_database_busy(err) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(sqlx::Error::RowNotFound) | AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// True for the errors that mean "the database has no room for this request right now".
pub fn is_database_busy(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().as_deref() == Some(TOO_MANY_CONNECTIONS),
        _ => false,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::BadRequest(message) => message.clone(),
            AppError::NotFound | AppError::Db(sqlx::Error::RowNotFound) => "not found".to_owned(),
            #[cfg(feature = "redis")]
            AppError::Cache(_) => "cache unavailable".to_owned(),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => "database busy".to_owned(),
            _ => "internal server error".to_owned(),
        };
        // Client mistakes are not the operator's problem; everything else is, with its cause.
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), "{self}");
        } else {
            tracing::debug!(status = status.as_u16(), "{self}");
        }
        (status, body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeout_is_503_database_busy() {
        assert_eq!(
            AppError::from(sqlx::Error::PoolTimedOut).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn other_database_errors_are_500_without_details() {
        let err = AppError::from(sqlx::Error::Protocol("secret internals".into()));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
