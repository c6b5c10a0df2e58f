//! The error of a call through a [`BulkheadService`](super::BulkheadService).

use std::error::Error;
use std::fmt;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Map, Value};
use tollgate::policy::BulkheadFull;

use crate::respond::HttpRejection;
use crate::response::json_error;

/// The bulkhead was full, or the inner service failed.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BulkheadError<E> {
    /// No slot was free within the bulkhead's maximum wait: the inner service was not called.
    Full(BulkheadFull),
    /// The inner service was called and returned this error.
    Inner(E),
}

impl<E> BulkheadError<E> {
    /// For HTTP services: a full bulkhead becomes the `503` of [`bulkhead_full_response`], the
    /// inner error is handed back.
    pub fn into_response<B: From<Bytes>>(self) -> Result<Response<B>, E> {
        match self {
            BulkheadError::Full(full) => Ok(bulkhead_full_response(&full)),
            BulkheadError::Inner(e) => Err(e),
        }
    }
}

/// `503 Service Unavailable` with the JSON body
/// `{"error":"bulkhead_full","message":…,"max_concurrent":N}`.
pub fn bulkhead_full_response<B: From<Bytes>>(full: &BulkheadFull) -> Response<B> {
    let mut extra = Map::new();
    extra.insert(
        "max_concurrent".to_owned(),
        Value::from(full.max_concurrent()),
    );
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "bulkhead_full",
        &full.to_string(),
        extra,
    )
}

impl<E> HttpRejection for BulkheadError<E> {
    type Inner = E;

    fn into_response<B: From<Bytes>>(self) -> Result<Response<B>, E> {
        BulkheadError::into_response(self)
    }
}

impl<E: fmt::Display> fmt::Display for BulkheadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BulkheadError::Full(full) => full.fmt(f),
            BulkheadError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for BulkheadError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BulkheadError::Full(full) => Some(full),
            BulkheadError::Inner(e) => Some(e),
        }
    }
}
