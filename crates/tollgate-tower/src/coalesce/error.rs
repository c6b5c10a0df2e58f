//! The error every caller of one coalesced execution shares.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Map, Value};

use crate::respond::HttpRejection;
use crate::response::json_error;

/// Why a coalesced request got no response. Every caller of one execution gets a clone of the
/// same error: the execution is never re-run on a joiner's behalf.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CoalesceError<E> {
    /// The inner service returned this error.
    Inner(E),
    /// The response body was larger than the layer's body limit.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Reading the response body failed.
    Body(Arc<dyn Error + Send + Sync>),
    /// The inner service panicked; the panic's message.
    Panicked(String),
    /// The execution was stopped before it finished (the runtime shut down). Also what an
    /// execution that was never given its request would end with, which the layer never does.
    Aborted,
}

impl<E> CoalesceError<E> {
    /// For HTTP services: everything but the inner service's own error becomes a JSON response
    /// (`502 upstream_body_too_large`, `502 upstream_body_failed`, `500 handler_panicked`,
    /// `503 coalesced_call_aborted`); the inner error is handed back.
    pub fn into_response<B: From<Bytes>>(self) -> Result<Response<B>, E> {
        let (status, code) = match &self {
            CoalesceError::Inner(_) => (StatusCode::BAD_GATEWAY, "upstream_failed"),
            CoalesceError::BodyTooLarge { .. } => {
                (StatusCode::BAD_GATEWAY, "upstream_body_too_large")
            }
            CoalesceError::Body(_) => (StatusCode::BAD_GATEWAY, "upstream_body_failed"),
            CoalesceError::Panicked(_) => (StatusCode::INTERNAL_SERVER_ERROR, "handler_panicked"),
            CoalesceError::Aborted => (StatusCode::SERVICE_UNAVAILABLE, "coalesced_call_aborted"),
        };
        // Server-side details (a panic message, a body's error) stay out of the response: they
        // are logged where they happen, once per shared call.
        let message = match &self {
            CoalesceError::Panicked(_) => "the inner service panicked".to_owned(),
            CoalesceError::Body(_) => "reading the upstream response body failed".to_owned(),
            other => other.describe(),
        };
        match self {
            CoalesceError::Inner(e) => Err(e),
            _ => Ok(json_error(
                status,
                code,
                &message,
                Map::<String, Value>::new(),
            )),
        }
    }

    fn describe(&self) -> String {
        match self {
            CoalesceError::Inner(_) => "the inner service failed".to_owned(),
            CoalesceError::BodyTooLarge { limit } => {
                format!("response body over the coalescing limit of {limit} bytes")
            }
            CoalesceError::Body(e) => format!("reading the response body failed: {e}"),
            CoalesceError::Panicked(msg) => format!("the inner service panicked: {msg}"),
            CoalesceError::Aborted => "the shared execution was stopped".to_owned(),
        }
    }
}

impl<E> HttpRejection for CoalesceError<E> {
    type Inner = E;

    fn into_response<B: From<Bytes>>(self) -> Result<Response<B>, E> {
        CoalesceError::into_response(self)
    }
}

impl<E: fmt::Display> fmt::Display for CoalesceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoalesceError::Inner(e) => e.fmt(f),
            other => f.write_str(&other.describe()),
        }
    }
}

impl<E: Error + 'static> Error for CoalesceError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CoalesceError::Inner(e) => Some(e),
            CoalesceError::Body(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}
