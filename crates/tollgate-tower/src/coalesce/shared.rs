//! The shared execution: call the inner service once, buffer its response for every caller.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tollgate::flight::Role;
use tower::{BoxError, Service};

use super::{CoalesceError, CoalescedBody};

/// A response buffered once and handed to every caller of its execution.
#[derive(Debug)]
pub(crate) struct SharedResponse {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl SharedResponse {
    /// This caller's copy; its extensions carry the caller's [`Role`].
    pub(crate) fn to_response<B>(&self, role: Role) -> Response<CoalescedBody<B>> {
        let mut response = Response::new(CoalescedBody::from(self.body.clone()));
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers.clone();
        response.extensions_mut().insert(role);
        response
    }
}

/// Calls `inner` with `req` and buffers the response body up to `limit` bytes.
pub(crate) async fn execute<S, Req, B>(
    mut inner: S,
    req: Req,
    limit: usize,
) -> Result<Arc<SharedResponse>, CoalesceError<S::Error>>
where
    S: Service<Req, Response = Response<B>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    let response = inner.call(req).await.map_err(CoalesceError::Inner)?;
    let (parts, body) = response.into_parts();
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(CoalesceError::BodyTooLarge { limit }),
        Err(e) => return Err(CoalesceError::Body(Arc::from(e))),
    };
    Ok(Arc::new(SharedResponse {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }))
}
