//! Why the layer answered a request itself, and the JSON error response for each reason.

use std::error::Error;
use std::fmt;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Map;
use tollgate::once;

use crate::response::json_error;

/// A request the [`IdempotencyLayer`](super::IdempotencyLayer) answered without a stored or
/// fresh response of the inner service. Each reason has a status and a stable `error` code;
/// the response body is `{"error":"<code>","message":"<text>"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// `400 idempotency_key_missing`: the method requires a key and none was sent.
    MissingKey,
    /// `400 idempotency_key_invalid`: empty, too long, not visible ASCII, or a malformed
    /// quoted string.
    InvalidKey(String),
    /// `401 tenant_missing` (status configurable): the tenant extractor found no tenant.
    MissingTenant(StatusCode),
    /// `413 body_too_large`: the request body is over the configured limit (bytes).
    BodyTooLarge(usize),
    /// `400 body_unreadable`: the request body could not be read.
    BodyUnreadable(String),
    /// `409 idempotency_key_in_use`: a request with this key is being processed.
    InProgress,
    /// `422 idempotency_key_reused`: the key was used for a different request.
    Mismatch,
    /// `409 idempotency_key_already_used`: the key was processed and the engine rejects
    /// repeats ([`once::OnCompleted::Reject`]).
    AlreadyDone,
    /// `409 idempotency_attempt_fenced`: this attempt lost its lease to another one; its result
    /// was not stored. Retrying returns the other attempt's outcome.
    Fenced,
    /// `500 outcome_unknown`: an earlier attempt with this key vanished after it may have had
    /// its effect; it is not run again on its own.
    OutcomeUnknown,
    /// `409 wait_timed_out`: the key stayed in progress past the engine's wait deadline.
    WaitTimedOut,
    /// `500 stored_failure`: the key holds a permanent failure (written outside this layer).
    StoredFailure,
    /// `original_failed`: the request that ran under this key failed and was not stored;
    /// retry it. Answered with the original request's own `5xx` status when it had one
    /// (a waiter in another process learns it from the store), else `503`.
    OriginalFailed(Option<u16>),
    /// `502 response_unreadable`: the inner service's response body failed; nothing was
    /// stored.
    ResponseUnreadable(String),
    /// `502 response_too_large`: the inner service's response body is over the configured
    /// response limit (bytes); nothing was stored.
    ResponseTooLarge(usize),
    /// `503 store_unavailable`: the exactly-once store failed.
    Store(String),
    /// `500 codec_error`: a stored response could not be encoded or decoded.
    Codec(String),
    /// `500 handler_panicked`: the inner service panicked; its record is left to lease expiry.
    Panicked(String),
    /// `500 internal_error`: an error this version of the layer does not know.
    Internal(String),
}

impl Rejection {
    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MissingKey | Rejection::InvalidKey(_) | Rejection::BodyUnreadable(_) => {
                StatusCode::BAD_REQUEST
            }
            Rejection::MissingTenant(status) => *status,
            Rejection::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::InProgress
            | Rejection::AlreadyDone
            | Rejection::Fenced
            | Rejection::WaitTimedOut => StatusCode::CONFLICT,
            Rejection::Mismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::ResponseUnreadable(_) | Rejection::ResponseTooLarge(_) => {
                StatusCode::BAD_GATEWAY
            }
            Rejection::OriginalFailed(status) => status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .filter(StatusCode::is_server_error)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            Rejection::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::OutcomeUnknown
            | Rejection::StoredFailure
            | Rejection::Codec(_)
            | Rejection::Panicked(_)
            | Rejection::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::MissingKey => "idempotency_key_missing",
            Rejection::InvalidKey(_) => "idempotency_key_invalid",
            Rejection::MissingTenant(_) => "tenant_missing",
            Rejection::BodyTooLarge(_) => "body_too_large",
            Rejection::BodyUnreadable(_) => "body_unreadable",
            Rejection::InProgress => "idempotency_key_in_use",
            Rejection::Mismatch => "idempotency_key_reused",
            Rejection::AlreadyDone => "idempotency_key_already_used",
            Rejection::Fenced => "idempotency_attempt_fenced",
            Rejection::OutcomeUnknown => "outcome_unknown",
            Rejection::WaitTimedOut => "wait_timed_out",
            Rejection::StoredFailure => "stored_failure",
            Rejection::OriginalFailed(_) => "original_failed",
            Rejection::ResponseUnreadable(_) => "response_unreadable",
            Rejection::ResponseTooLarge(_) => "response_too_large",
            Rejection::Store(_) => "store_unavailable",
            Rejection::Codec(_) => "codec_error",
            Rejection::Panicked(_) => "handler_panicked",
            Rejection::Internal(_) => "internal_error",
        }
    }

    /// The `outcome` label of `tollgate_idempotency_requests_total`.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Rejection::MissingKey => "missing_key",
            Rejection::InvalidKey(_) => "invalid_key",
            Rejection::MissingTenant(_) => "missing_tenant",
            Rejection::BodyTooLarge(_) => "too_large",
            Rejection::InProgress => "conflict",
            Rejection::Mismatch => "mismatch",
            _ => "error",
        }
    }

    /// The JSON error response. Server-side details (a store's error, a panic message) stay
    /// out of it: they are in [`Display`](fmt::Display) and the layer's tracing events.
    pub fn into_response<B: From<Bytes>>(self) -> Response<B> {
        let message = match &self {
            Rejection::ResponseUnreadable(_) => "the response could not be read".to_owned(),
            Rejection::Store(_) => "the idempotency store is unavailable; retry later".to_owned(),
            Rejection::Codec(_) | Rejection::Panicked(_) | Rejection::Internal(_) => {
                "internal error".to_owned()
            }
            _ => self.to_string(),
        };
        json_error(self.status(), self.code(), &message, Map::new())
    }

    /// The rejection for an error of the exactly-once engine (a retryable failure is the one
    /// case handled by the caller: it carries the original response).
    pub(crate) fn from_once<E>(error: once::Error<E>) -> Self {
        match error {
            once::Error::Conflict => Rejection::InProgress,
            once::Error::Mismatch => Rejection::Mismatch,
            once::Error::AlreadyDone => Rejection::AlreadyDone,
            once::Error::Fenced => Rejection::Fenced,
            once::Error::OutcomeUnknown => Rejection::OutcomeUnknown,
            once::Error::WaitTimedOut => Rejection::WaitTimedOut,
            once::Error::Failed(f) if f.retryable => Rejection::OriginalFailed(None),
            once::Error::Failed(_) => Rejection::StoredFailure,
            once::Error::Store(e) => Rejection::Store(e.to_string()),
            once::Error::Codec(msg) => Rejection::Codec(msg),
            once::Error::Panicked(msg) => Rejection::Panicked(msg),
            _ => Rejection::Internal("unexpected exactly-once error".to_owned()),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::MissingKey => f.write_str("this request requires an Idempotency-Key header"),
            Rejection::InvalidKey(why) => f.write_str(why),
            Rejection::MissingTenant(_) => f.write_str("the request's tenant is not known"),
            Rejection::BodyTooLarge(limit) => {
                write!(f, "the request body is larger than {limit} bytes")
            }
            Rejection::BodyUnreadable(e) => write!(f, "the request body could not be read: {e}"),
            Rejection::InProgress => {
                f.write_str("a request with this Idempotency-Key is being processed; retry later")
            }
            Rejection::Mismatch => {
                f.write_str("this Idempotency-Key was used for a different request")
            }
            Rejection::AlreadyDone => f.write_str("this Idempotency-Key was already used"),
            Rejection::Fenced => {
                f.write_str("this attempt was taken over by another one; retry to get its outcome")
            }
            Rejection::OutcomeUnknown => f.write_str(
                "an earlier attempt with this Idempotency-Key ended with an unknown outcome",
            ),
            Rejection::WaitTimedOut => {
                f.write_str("the request with this Idempotency-Key is still being processed")
            }
            Rejection::StoredFailure => {
                f.write_str("the request with this Idempotency-Key failed permanently")
            }
            Rejection::OriginalFailed(Some(status)) => write!(
                f,
                "the request with this Idempotency-Key failed with status {status}; retry it"
            ),
            Rejection::OriginalFailed(None) => {
                f.write_str("the request with this Idempotency-Key failed; retry it")
            }
            Rejection::ResponseUnreadable(e) => write!(f, "the response could not be read: {e}"),
            Rejection::ResponseTooLarge(limit) => {
                write!(
                    f,
                    "the response is larger than {limit} bytes and was not stored"
                )
            }
            Rejection::Store(e) => write!(f, "the idempotency store failed: {e}"),
            Rejection::Codec(e) => write!(f, "a stored response could not be decoded: {e}"),
            Rejection::Panicked(e) => write!(f, "the request handler panicked: {e}"),
            Rejection::Internal(e) => f.write_str(e),
        }
    }
}

impl Error for Rejection {}
