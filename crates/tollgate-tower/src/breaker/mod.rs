//! Circuit-breaker middleware: calls go through a [`tollgate::breaker::Breaker`].
//!
//! Each call asks the breaker for a permit when its response future is first polled (as
//! [`Breaker::call`] does). Not permitted: the inner service is **not called** and the call
//! fails with [`BreakerError::Open`] — or, through [`HttpBreakerLayer`], is answered with
//! `503 Service Unavailable`, a `Retry-After` header and a JSON body
//! ([`circuit_open_response`]). Permitted: the inner service's result is classified by a
//! [`Classifier`] (default [`ErrIsFailure`](tollgate::breaker::ErrIsFailure) for
//! [`BreakerLayer`], [`ServerErrorIsFailure`] for [`HttpBreakerLayer`]) and recorded.
//!
//! # Concurrency and cancellation
//! The breaker's own guarantees hold (exact half-open trial counts, outcomes counted only in
//! the state they were permitted in). A response future dropped before the inner call
//! finishes records nothing and gives back a half-open trial slot it held. The outcome is
//! decided when the inner service returns its response, before any body is streamed.
//!
//! # Example
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tollgate::breaker::{Breaker, BreakerConfig, SlidingWindow};
//! use tollgate_tower::breaker::HttpBreakerLayer;
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let config = BreakerConfig::default().window(SlidingWindow::Count(2)).minimum_calls(2);
//! let breaker = Arc::new(Breaker::new("upstream", config).unwrap());
//! let failing = tower::service_fn(|_req: Request<Full<Bytes>>| async {
//!     let mut res = Response::new(Full::new(Bytes::new()));
//!     *res.status_mut() = StatusCode::BAD_GATEWAY;
//!     Ok::<_, Infallible>(res)
//! });
//! let mut svc = HttpBreakerLayer::new(breaker).layer(failing);
//! for _ in 0..2 {
//!     let res = svc.call(Request::new(Full::default())).await.unwrap();
//!     assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
//! }
//! // Open now: answered without calling the inner service.
//! let res = svc.call(Request::new(Full::default())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert!(res.headers().contains_key("retry-after"));
//! # }
//! ```
//!
//! [`Breaker::call`]: tollgate::breaker::Breaker::call

mod classify;
mod error;
mod layer;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tollgate::breaker::{Breaker, Classifier, NotPermitted};
use tower::Service;

pub use classify::ServerErrorIsFailure;
pub use error::{BreakerError, circuit_open_response};
pub use layer::{BreakerLayer, HttpBreakerLayer};

use crate::{BoxFuture, take_ready};

/// A service whose calls go through a breaker; rejections are [`BreakerError::Open`].
/// Made by [`BreakerLayer`].
#[derive(Clone)]
pub struct BreakerService<S, C> {
    inner: S,
    breaker: Arc<Breaker>,
    classifier: C,
}

impl<S, C> BreakerService<S, C> {
    /// Wraps `inner`, classifying its results with `classifier`.
    pub fn new(inner: S, breaker: Arc<Breaker>, classifier: C) -> Self {
        BreakerService {
            inner,
            breaker,
            classifier,
        }
    }
}

impl<S, C, Req> Service<Req> for BreakerService<S, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
    C: Classifier<S::Response, S::Error> + Clone + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = BoxFuture<Result<S::Response, BreakerError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = take_ready(&mut self.inner);
        let breaker = Arc::clone(&self.breaker);
        let classifier = self.classifier.clone();
        Box::pin(async move { guarded(&breaker, inner, req, classifier).await })
    }
}

/// A service whose calls go through a breaker; rejections are answered with the `503` of
/// [`circuit_open_response`]. Made by [`HttpBreakerLayer`].
#[derive(Clone)]
pub struct HttpBreakerService<S, C> {
    inner: BreakerService<S, C>,
}

impl<S, C> HttpBreakerService<S, C> {
    /// Wraps `inner`, classifying its results with `classifier`.
    pub fn new(inner: S, breaker: Arc<Breaker>, classifier: C) -> Self {
        HttpBreakerService {
            inner: BreakerService::new(inner, breaker, classifier),
        }
    }
}

impl<S, C, Req, B> Service<Req> for HttpBreakerService<S, C>
where
    S: Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: From<Bytes> + Send + 'static,
    C: Classifier<S::Response, S::Error> + Clone + Send + 'static,
    Req: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<B>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let call = self.inner.call(req);
        Box::pin(async move { call.await.or_else(BreakerError::into_response) })
    }
}

/// The call itself. The permit borrows the breaker, so this lives in an `async` block that owns
/// the `Arc` (a named future would borrow from itself).
async fn guarded<S, C, Req>(
    breaker: &Breaker,
    mut inner: S,
    req: Req,
    classifier: C,
) -> Result<S::Response, BreakerError<S::Error>>
where
    S: Service<Req>,
    C: Classifier<S::Response, S::Error>,
{
    let permit = breaker.try_acquire().map_err(|rejected: NotPermitted| {
        tracing::debug!(breaker = breaker.name(), "breaker layer: call rejected");
        BreakerError::Open(rejected)
    })?;
    let result = inner.call(req).await;
    permit.record(classifier.classify(&result));
    result.map_err(BreakerError::Inner)
}

impl<S, C> fmt::Debug for BreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerService")
            .field("breaker", &self.breaker)
            .field("classifier", &std::any::type_name::<C>())
            .finish_non_exhaustive()
    }
}

impl<S, C> fmt::Debug for HttpBreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBreakerService")
            .field("breaker", &self.inner.breaker)
            .field("classifier", &std::any::type_name::<C>())
            .finish_non_exhaustive()
    }
}
