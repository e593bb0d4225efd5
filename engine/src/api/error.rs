//! `ApiError`: every way an API call fails, each with its HTTP status. The body is always
//! `{ "error": "<message>" }`; messages say what was wrong and, where it helps, what to do.
//! The client is the learner's own UI on this machine, so engine errors (compiler
//! diagnostics, PostgreSQL messages) are passed through: they are what the learner needs.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::catalog::CatalogError;
use crate::redis_console::ConsoleError;
use crate::topology::LabError;
use crate::workspace::WorkspaceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong API token: send `Authorization: Bearer <token>` (or `?token=` for EventSource)")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Sql(#[from] crate::sql::SqlError),
    #[error(transparent)]
    Redis(#[from] crate::redis_console::ConsoleError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            other => ApiError::Lab(LabError::Catalog(other)),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Lab(LabError::Catalog(CatalogError::NotFound { .. })) => {
                StatusCode::NOT_FOUND
            }
            // A query the database refused is the learner's to fix, not a server fault.
            ApiError::Sql(crate::sql::SqlError::Query { .. }) => StatusCode::BAD_REQUEST,
            ApiError::Sql(crate::sql::SqlError::Connect(_)) => StatusCode::SERVICE_UNAVAILABLE,
            // The learner's command line or a refusal of the read-only console; Redis runs
            // only with the lab (start it); a Redis that does not answer.
            ApiError::Redis(ConsoleError::Syntax(_) | ConsoleError::Refused(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Redis(ConsoleError::NotRunning { .. }) => StatusCode::CONFLICT,
            ApiError::Redis(ConsoleError::Redis(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Config(_)
            | ApiError::Lab(_)
            | ApiError::Workspace(_)
            | ApiError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "API call failed");
        }
        (
            status,
            axum::Json(crate::api::model::ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}
