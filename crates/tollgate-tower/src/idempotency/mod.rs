//! `Idempotency-Key` middleware (IETF draft-ietf-httpapi-idempotency-key-header) over
//! tollgate's exactly-once engine [`Once`].
//!
//! A request of a handled method (default `POST`, `PATCH`) carrying `Idempotency-Key: <key>`
//! runs the inner service **once per key**; the same request again gets the stored response.
//!
//! | request | answer |
//! |---|---|
//! | method not handled, or key optional ([`IdempotencyLayer::key_required`]) and absent | passed through untouched |
//! | key required and absent | `400 idempotency_key_missing` |
//! | key empty, over 255 bytes, not visible ASCII, or sent twice | `400 idempotency_key_invalid` |
//! | tenant extractor finds no tenant | `401 tenant_missing` (configurable) |
//! | body over the limit (default 1 MiB) | `413 body_too_large` |
//! | same key while the first request runs | `409 idempotency_key_in_use` |
//! | same key, different method, path, query or body (also while the first runs) | `422 idempotency_key_reused` |
//! | same key, waited for ([`OnInProgress::Wait`](tollgate::once::OnInProgress)) and the first request failed with a `5xx` | that status, `original_failed` |
//! | same key, first request completed | the stored response, with `Idempotent-Replayed: true` |
//!
//! **409 or 422 while the first request runs?** The draft answers 409 for a key "still being
//! processed" and 422 for a key "reused with a different payload"; a different payload under a
//! key in flight is both. This layer answers **422**: a 409 tells the client to retry later,
//! and that retry could only ever get the 422, so the client learns of its bug at once. (The
//! store compares fingerprints before it looks at the lease.)
//!
//! The key may be the draft's structured-field string (`"abc"`) or a bare token (`abc`).
//! Errors are JSON, `{"error":"<code>","message":"<text>"}` with `content-type:
//! application/json`; every code is listed on [`Rejection`].
//!
//! # What is stored
//! Responses with a status below 500 (`2xx` and `4xx`, as the draft suggests): status, headers
//! without the hop-by-hop ones (`connection`, `transfer-encoding`, …; `content-length` is set
//! from the body) and the whole body. The first caller gets the response rebuilt from exactly
//! what was stored, so it and every replay are identical but for the replay header.
//!
//! A `5xx` response or an error of the inner service is **not** stored: the key is freed
//! (a retryable [`Failure`](tollgate::once::Failure)) so a retry runs again, and the first
//! caller gets that response (body still streaming) or error unchanged.
//!
//! # The fingerprint
//! The SHA-256 of the method, the path with query and the body (length-prefixed). Headers are
//! not part of it. The body is buffered (up to the limit) and handed to the inner service as
//! `ReqBody::from(bytes)`. The response body of a handled request is buffered whole (bounded
//! with [`IdempotencyLayer::response_limit`]), so streaming endpoints should not be behind this
//! layer.
//!
//! # Tenants
//! With [`IdempotencyLayer::tenant`], the record key is the tenant and the client's key,
//! length-prefixed: tenants have disjoint key spaces, **one tenant can never replay another's
//! response**, and the same key with different bodies in two tenants is no `422`.
//!
//! # Concurrency and cancellation
//! - The engine lets exactly one request per key run at a time, across tasks and — with a
//!   shared store such as `tollgate-sqlite` — processes; the others get `409` at once.
//! - The inner call runs in a task owned by no request: a client that disconnects does not
//!   cancel it, and its response is still stored for the retry.
//! - An inner service that panics answers `500 handler_panicked`; its key stays in progress
//!   until the engine's lease runs out, then reports `500 outcome_unknown` (it may have had its
//!   effect) unless the engine was built with [`OnUnknown::Rerun`](tollgate::once::OnUnknown).
//!
//! # Metrics
//! `tollgate_idempotency_requests_total{outcome}`: `executed`, `replayed`, `conflict`,
//! `mismatch`, `missing_key`, `invalid_key`, `missing_tenant`, `too_large`, `error`. Requests
//! passed through are not counted.
//!
//! # Example
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Method, Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tollgate::once::MemoryStore;
//! use tollgate_tower::idempotency::IdempotencyLayer;
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let create = tower::service_fn(|_req: Request<Full<Bytes>>| async {
//!     let mut res = Response::new(Full::new(Bytes::from_static(b"{\"id\":7}")));
//!     *res.status_mut() = StatusCode::CREATED;
//!     Ok::<_, Infallible>(res)
//! });
//! let mut svc = IdempotencyLayer::new(MemoryStore::new()).layer(create);
//! let order = || {
//!     Request::builder()
//!         .method(Method::POST)
//!         .uri("/orders")
//!         .header("idempotency-key", "order-1")
//!         .body(Full::new(Bytes::from_static(b"{\"sku\":\"tea\"}")))
//!         .unwrap()
//! };
//! let first = svc.call(order()).await.unwrap();
//! assert_eq!(first.status(), StatusCode::CREATED);
//! let again = svc.call(order()).await.unwrap();
//! assert_eq!(again.status(), StatusCode::CREATED);
//! assert_eq!(again.headers()["idempotent-replayed"], "true");
//! assert_eq!(again.into_body().collect().await.unwrap().to_bytes(), "{\"id\":7}");
//! # }
//! ```

mod fingerprint;
mod flow;
mod future;
mod key;
mod layer;
mod rejection;
mod stored;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use tollgate::once::{Once, Store};
use tower::{BoxError, Service};

pub use future::ResponseFuture;
pub use layer::{IdempotencyLayer, TenantFn};
pub use rejection::Rejection;

use crate::take_ready;
use layer::Config;

/// The response body of an [`IdempotencyService`]: the inner service's own body (requests
/// passed through, responses not stored), or a buffered one (stored and replayed responses,
/// rejections).
pub type IdempotentBody<B> = Either<B, Full<Bytes>>;

/// A service whose handled requests run once per `Idempotency-Key`. Made by
/// [`IdempotencyLayer`].
pub struct IdempotencyService<S, St> {
    inner: S,
    once: Once<St>,
    config: Arc<Config>,
}

impl<S, St> IdempotencyService<S, St> {
    pub(crate) fn new(inner: S, once: Once<St>, config: Arc<Config>) -> Self {
        IdempotencyService {
            inner,
            once,
            config,
        }
    }
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for IdempotencyService<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    St: Store,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<IdempotentBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let inner = take_ready(&mut self.inner);
        let once = self.once.clone();
        let config = Arc::clone(&self.config);
        ResponseFuture::new(async move { flow::handle(inner, once, &config, req).await })
    }
}

impl<S: Clone, St> Clone for IdempotencyService<S, St> {
    fn clone(&self) -> Self {
        IdempotencyService {
            inner: self.inner.clone(),
            once: self.once.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S, St: fmt::Debug> fmt::Debug for IdempotencyService<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyService")
            .field("once", &self.once)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
