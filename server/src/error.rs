//! The server's error: each variant maps to one HTTP status and a JSON body with a reason.
//! Nothing here carries personal data.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fenlei_core::CoreError;
use fenlei_core::protocol::ErrorBody;
use thiserror::Error;

pub type ServerResult<T> = Result<T, ServerError>;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("{0}")]
    BadRequest(String),
    /// A document or sync message that does not decode or is not a valid inspection.
    #[error("document {doc}: {reason}")]
    InvalidDocument { doc: String, reason: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("document {doc}: {reason}")]
    ForbiddenDocument { doc: String, reason: String },
    /// Changes that break a document rule: 403 when the rule is about who wrote, else 422.
    #[error("document {doc} breaks the {rule} rule: {reason}")]
    RuleBroken {
        doc: String,
        rule: fenlei_core::docrules::Rule,
        reason: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// Too many failed attempts (the dashboard's sign-in lockout).
    #[error("{0}")]
    TooManyRequests(String),
    /// The request does not fit the resource's current state (e.g. approving a draft).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl From<rusqlite::Error> for ServerError {
    fn from(e: rusqlite::Error) -> Self {
        ServerError::Internal(format!("database: {e}"))
    }
}

impl From<std::io::Error> for ServerError {
    fn from(e: std::io::Error) -> Self {
        ServerError::Internal(format!("i/o: {e}"))
    }
}

impl From<CoreError> for ServerError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::CorruptDocument { id, reason } => {
                ServerError::InvalidDocument { doc: id, reason }
            }
            CoreError::RuleBroken { id, rule, reason } => ServerError::RuleBroken {
                doc: id,
                rule,
                reason,
            },
            CoreError::Database(m) => ServerError::Internal(format!("database: {m}")),
            CoreError::Io(e) => ServerError::Internal(format!("i/o: {e}")),
            CoreError::DatabaseTooNew { .. } | CoreError::CorruptDatabase { .. } => {
                ServerError::Internal(e.to_string())
            }
            CoreError::UnknownInspection(_) | CoreError::UnknownCommunity(_) => {
                ServerError::NotFound(e.to_string())
            }
            other => ServerError::BadRequest(other.to_string()),
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, word, doc) = match &self {
            ServerError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", None),
            ServerError::InvalidDocument { doc, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_document",
                Some(doc.clone()),
            ),
            ServerError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ServerError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            ServerError::ForbiddenDocument { doc, .. } => {
                (StatusCode::FORBIDDEN, "forbidden", Some(doc.clone()))
            }
            ServerError::RuleBroken { doc, rule, .. } if rule.is_permission() => {
                (StatusCode::FORBIDDEN, "forbidden", Some(doc.clone()))
            }
            ServerError::RuleBroken { doc, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_document",
                Some(doc.clone()),
            ),
            ServerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            ServerError::TooManyRequests(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", None)
            }
            ServerError::Conflict(_) => (StatusCode::CONFLICT, "conflict", None),
            ServerError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        };
        let reason = match &self {
            ServerError::InvalidDocument { reason, .. }
            | ServerError::ForbiddenDocument { reason, .. } => reason.clone(),
            ServerError::RuleBroken { rule, reason, .. } => format!("{rule}: {reason}"),
            other => other.to_string(),
        };
        let rule = match &self {
            ServerError::RuleBroken { rule, .. } => Some(rule.name().to_string()),
            _ => None,
        };
        if status.is_server_error() {
            eprintln!("fenlei-server: {reason}");
        }
        let body = ErrorBody {
            error: word.into(),
            reason,
            doc,
            rule,
        };
        (status, axum::Json(body)).into_response()
    }
}
