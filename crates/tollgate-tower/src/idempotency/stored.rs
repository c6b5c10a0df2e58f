//! A response as stored under its key, and rebuilt for the first caller and every replay.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use http::response::Parts;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

/// Headers that describe one connection or one transfer, not the resource: never stored.
/// `content-length` is set again from the stored body.
const NOT_STORED: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Bytes stored as text when they are UTF-8 (a JSON body stays readable and compact in the
/// store), as a byte array otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Stored {
    Text(String),
    Bytes(Vec<u8>),
}

impl Stored {
    fn new(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Stored::Text(text.to_owned()),
            Err(_) => Stored::Bytes(bytes.to_vec()),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Stored::Text(text) => text.into_bytes(),
            Stored::Bytes(bytes) => bytes,
        }
    }
}

/// A completed response: status, end-to-end headers (in order, repeats kept) and body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredResponse {
    status: u16,
    headers: Vec<(String, Stored)>,
    body: Stored,
}

impl StoredResponse {
    pub(crate) fn new(parts: &Parts, body: &[u8]) -> Self {
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| !NOT_STORED.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), Stored::new(value.as_bytes())))
            .collect();
        StoredResponse {
            status: parts.status.as_u16(),
            headers,
            body: Stored::new(body),
        }
    }

    /// The response, with `replay_header: true` added when it is a replay. A stored part that
    /// no longer parses (a record written by something else) is left out rather than failing
    /// the request.
    pub(crate) fn into_response(self, replay_header: Option<&HeaderName>) -> Response<Full<Bytes>> {
        let body = Bytes::from(self.body.into_bytes());
        let length = body.len();
        let mut response = Response::new(Full::new(body));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            let name = HeaderName::from_bytes(name.as_bytes());
            let value = HeaderValue::from_bytes(&value.into_bytes());
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        if let Some(name) = replay_header {
            headers.insert(name.clone(), HeaderValue::from_static("true"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json_without_hop_by_hop_headers() {
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = StatusCode::CREATED;
        parts.headers.append("x-a", HeaderValue::from_static("1"));
        parts.headers.append("x-a", HeaderValue::from_static("2"));
        parts
            .headers
            .append("x-bin", HeaderValue::from_bytes(b"\xff").unwrap());
        parts
            .headers
            .append("transfer-encoding", HeaderValue::from_static("chunked"));
        parts
            .headers
            .append("connection", HeaderValue::from_static("close"));
        parts
            .headers
            .append("content-length", HeaderValue::from_static("999"));
        let stored = StoredResponse::new(&parts, b"\x00\xffbody");
        let json = serde_json::to_vec(&stored).unwrap();
        let back: StoredResponse = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, stored);

        let replay_header = HeaderName::from_static("idempotent-replayed");
        let response = back.into_response(Some(&replay_header));
        assert_eq!(response.status(), StatusCode::CREATED);
        let h = response.headers();
        assert_eq!(h.get_all("x-a").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(h.get("x-bin").unwrap().as_bytes(), b"\xff");
        assert_eq!(h.get("content-length").unwrap(), "6");
        assert_eq!(h.get("idempotent-replayed").unwrap(), "true");
        assert!(h.get("transfer-encoding").is_none() && h.get("connection").is_none());
    }
}
