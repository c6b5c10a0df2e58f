//! The JSON error responses every layer answers with, and the `Retry-After` header value.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use serde_json::{Map, Value};

/// A JSON error body `{"error": code, "message": message, ...extra}` with `status`.
pub(crate) fn json_error<B: From<Bytes>>(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: Map<String, Value>,
) -> Response<B> {
    let mut body = Map::new();
    body.insert("error".to_owned(), Value::from(code));
    body.insert("message".to_owned(), Value::from(message));
    body.extend(extra);
    // Serializing a `Value` built from strings and numbers cannot fail; the fallback keeps the
    // response well-formed anyway.
    let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(B::from(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Whole seconds, rounded up: a client told to come back after 0.2 s waits 1 s, never 0.
pub(crate) fn retry_after_secs(after: Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

/// Sets `Retry-After: <seconds>` on `response`.
pub(crate) fn set_retry_after<B>(response: &mut Response<B>, secs: u64) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 0);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after_secs(Duration::from_millis(19_500)), 20);
    }
}
