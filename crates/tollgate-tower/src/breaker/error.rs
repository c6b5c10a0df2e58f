//! The error of a call through a [`BreakerService`](super::BreakerService).

use std::error::Error;
use std::fmt;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Map, Value};
use tollgate::breaker::NotPermitted;

use crate::respond::HttpRejection;
use crate::response::{json_error, retry_after_secs, set_retry_after};

/// The breaker turned the call away, or the inner service failed.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerError<E> {
    /// The breaker is open (or its half-open trials are taken): the inner service was not
    /// called. Never counted as an outcome.
    Open(NotPermitted),
    /// The inner service was called and returned this error.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// For HTTP services: a rejection becomes the `503` of [`circuit_open_response`], the inner
    /// error is handed back.
    pub fn into_response<B: From<Bytes>>(self) -> Result<Response<B>, E> {
        match self {
            BreakerError::Open(rejected) => Ok(circuit_open_response(&rejected)),
            BreakerError::Inner(e) => Err(e),
        }
    }
}

/// `503 Service Unavailable` for a rejected call: `Retry-After` in whole seconds (rounded up, at
/// least 1: [`retry_after_secs`](crate::response::retry_after_secs))
/// when the breaker knows when it will let trial calls through, and the JSON body
/// `{"error":"circuit_open","message":…,"breaker":<name>,"retry_after_secs":N}`
/// (`retry_after_secs` is left out when unknown).
pub fn circuit_open_response<B: From<Bytes>>(rejected: &NotPermitted) -> Response<B> {
    let secs = rejected.retry_after().map(retry_after_secs);
    let mut extra = Map::new();
    extra.insert("breaker".to_owned(), Value::from(rejected.breaker()));
    if let Some(secs) = secs {
        extra.insert("retry_after_secs".to_owned(), Value::from(secs));
    }
    let message = rejected.to_string();
    let mut response = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "circuit_open",
        &message,
        extra,
    );
    if let Some(after) = rejected.retry_after() {
        set_retry_after(&mut response, after);
    }
    response
}

impl<E> HttpRejection for BreakerError<E> {
    type Inner = E;

    fn into_response<B: From<Bytes>>(self) -> Result<Response<B>, E> {
        BreakerError::into_response(self)
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open(rejected) => rejected.fmt(f),
            BreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for BreakerError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BreakerError::Open(rejected) => Some(rejected),
            BreakerError::Inner(e) => Some(e),
        }
    }
}
