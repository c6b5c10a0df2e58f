//! The one JSON error body and the one `Retry-After` rounding of every tollgate HTTP answer,
//! shared by this crate's layers and by services built on them (the reference service uses
//! them for its own errors), so a client sees one format.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::StatusCode;
//! use http_body_util::Full;
//! use tollgate_tower::response::{json_error, set_retry_after};
//!
//! let mut res = json_error::<Full<Bytes>>(StatusCode::SERVICE_UNAVAILABLE, "busy", "try later", Default::default());
//! set_retry_after(&mut res, Duration::from_millis(200));
//! assert_eq!(res.headers()["retry-after"], "1"); // rounded up, never 0
//! assert_eq!(res.headers()["content-type"], "application/json");
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use serde_json::{Map, Value};

/// A JSON error answer `{"error": code, "message": message, ...extra}` with `status` and
/// `content-type: application/json`. `code` is stable, for programs; `message` is for people.
pub fn json_error<B: From<Bytes>>(
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

/// The `Retry-After` value for a wait of `after`: whole seconds, rounded up, and at least 1 —
/// a client told to come back after 0.2 s waits 1 s, and no client is told `0` (retry at once).
pub fn retry_after_secs(after: Duration) -> u64 {
    (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1)
}

/// Sets `Retry-After: <seconds>` on `response`, rounded by [`retry_after_secs`].
pub fn set_retry_after<B>(response: &mut Response<B>, after: Duration) {
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(after)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_never_says_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(30)), 30);
        assert_eq!(retry_after_secs(Duration::from_millis(19_500)), 20);
    }
}
