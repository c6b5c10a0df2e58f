//! The service's error answer: a status, a stable machine-readable code and a message, sent as
//! `{"error": code, "message": message}` with `content-type: application/json`: the one
//! body of [`tollgate_tower::response`], shared with the tower layers.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tollgate_tower::response::{json_error, set_retry_after};

/// An error answer of the service; every failure path ends in one, so no request sees a bare
/// 500 page or a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code (`report_exists`, `invalid_date`, …) for programs.
    pub code: &'static str,
    /// A message for people.
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up, at least 1) when set.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error answer.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 Not Found.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409 Conflict.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500 Internal Server Error; the message is logged, the client gets a generic one.
    pub fn internal(code: &'static str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(code, %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            format!("internal error ({code})"),
        )
    }

    /// Adds a `Retry-After` hint.
    #[must_use]
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    /// The JSON body and `Retry-After` rounding of every tollgate layer
    /// ([`tollgate_tower::response`]), so clients see one format.
    fn into_response(self) -> Response {
        let mut response = json_error(self.status, self.code, &self.message, Default::default());
        if let Some(after) = self.retry_after {
            set_retry_after(&mut response, after);
        }
        response
    }
}
