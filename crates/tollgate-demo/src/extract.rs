//! Extractors whose rejections are the service's JSON errors, so malformed input always gets a
//! 4xx with `{"error", "message"}` instead of axum's plain-text answers.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Path parameters, deserialized like `axum::extract::Path`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(e) => Err(ApiError::new(e.status(), "invalid_path", e.body_text())),
        }
    }
}

/// A JSON body, read up to the router's body limit and deserialized with `serde_json`.
/// Too large → 413 `payload_too_large`; not JSON → 400 `invalid_json`; JSON of the wrong
/// shape → 422 `invalid_body`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    e.to_string(),
                ),
                _ => ApiError::bad_request(
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                ),
            }
        })
    }
}

fn body_error(e: BytesRejection) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "payload_too_large", "the request body is too large")
    } else {
        ApiError::new(status, "invalid_body", e.body_text())
    }
}
