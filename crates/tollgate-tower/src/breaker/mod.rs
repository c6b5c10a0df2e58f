//! Circuit-breaker middleware: calls go through a [`tollgate::breaker::Breaker`].
//!
//! Each call asks the breaker for a permit when it is made (`Service::call`), and its named
//! [`ResponseFuture`] owns that permit ([`PermitGuard`]). Not
//! permitted: the inner service is **not called** and the call
//! fails with [`BreakerError::Open`] — or, through [`HttpBreakerLayer`], is answered with
//! `503 Service Unavailable`, a `Retry-After` header and a JSON body
//! ([`circuit_open_response`]). Permitted: the inner service's result is classified by a
//! [`Classifier`] (default [`ErrIsFailure`](tollgate::breaker::ErrIsFailure) for
//! [`BreakerLayer`], [`ServerErrorIsFailure`] for [`HttpBreakerLayer`]) and recorded.
//!
//! # Concurrency and cancellation
//! The breaker's own guarantees hold (exact half-open trial counts, outcomes counted only in
//! the state they were permitted in). A response future dropped before the inner call
//! finishes (or before it is first polled) records nothing and gives back a half-open trial
//! slot it held. The outcome is
//! decided when the inner service returns its response, before any body is streamed.
//!
//! # How the breaker is held
//! A layer holds its breaker through a handle `H`: an `Arc<Breaker>` (the default), or a
//! `&'static Breaker` — a breaker in a `static`, or one leaked at start-up with
//! `Box::leak`. Each call's permit holds a clone of the handle; a `&'static` clone is a copy,
//! so a call then touches no reference count (an `Arc` costs two atomic read-modify-writes per
//! call, and two more when the service is cloned per request, as `oneshot` on a clone does).
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::LazyLock;
//! use tollgate::breaker::{Breaker, BreakerConfig};
//! use tollgate_tower::breaker::BreakerLayer;
//! use tower::{Layer, Service};
//!
//! static UPSTREAM: LazyLock<Breaker> =
//!     LazyLock::new(|| Breaker::new("upstream", BreakerConfig::default()).unwrap());
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut svc = BreakerLayer::new(&*UPSTREAM)
//!     .layer(tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n + 1) }));
//! assert_eq!(svc.call(1).await.unwrap(), 2);
//! assert_eq!(UPSTREAM.totals().calls, 1);
//! # }
//! ```
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

mod classify;
mod error;
mod future;
mod layer;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use tollgate::breaker::{Breaker, Classifier, PermitGuard};
use tower::Service;

pub use classify::ServerErrorIsFailure;
pub use error::{BreakerError, circuit_open_response};
pub use future::{HttpResponseFuture, ResponseFuture};
pub use layer::{BreakerLayer, HttpBreakerLayer};

use crate::respond::{Rejecting, Respond};

/// A service whose calls go through a breaker held by `H` (see [how the breaker is
/// held](self#how-the-breaker-is-held)); rejections are [`BreakerError::Open`]. Made by
/// [`BreakerLayer`].
#[derive(Clone)]
pub struct BreakerService<S, C, H = Arc<Breaker>> {
    inner: S,
    breaker: H,
    classifier: C,
}

/// A [`BreakerService`] whose rejections are answered with the `503` of
/// [`circuit_open_response`]. Made by [`HttpBreakerLayer`].
pub type HttpBreakerService<S, C = ServerErrorIsFailure, H = Arc<Breaker>> =
    Respond<BreakerService<S, C, H>>;

impl<S, C, H> BreakerService<S, C, H> {
    /// Wraps `inner`, classifying its results with `classifier`.
    pub fn new(inner: S, breaker: H, classifier: C) -> Self {
        BreakerService {
            inner,
            breaker,
            classifier,
        }
    }
}

impl<S, C, H, Req> Service<Req> for BreakerService<S, C, H>
where
    S: Service<Req>,
    C: Classifier<S::Response, S::Error> + Clone,
    H: Deref<Target = Breaker> + Clone,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, C, H>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        let classifier = self.classifier.clone();
        match PermitGuard::try_acquire(&self.breaker) {
            Ok(permit) => ResponseFuture::called(self.inner.call(req), permit, classifier),
            Err(rejected) => {
                tracing::debug!(
                    breaker = self.breaker.name(),
                    "breaker layer: call rejected"
                );
                ResponseFuture::rejected(rejected, classifier)
            }
        }
    }
}

impl<S, C, H, Req, B> Rejecting<Req> for BreakerService<S, C, H>
where
    S: Service<Req, Response = Response<B>>,
    C: Classifier<Response<B>, S::Error> + Clone,
    H: Deref<Target = Breaker> + Clone,
    B: From<Bytes>,
{
    type Answering = HttpResponseFuture<S::Future, C, H>;

    #[inline]
    fn call_answering(&mut self, req: Req) -> Self::Answering {
        HttpResponseFuture::new(self.call(req))
    }

    #[inline]
    fn poll_inner_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
}

impl<S, C, H: Deref<Target = Breaker>> fmt::Debug for BreakerService<S, C, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerService")
            .field("breaker", &*self.breaker)
            .field("classifier", &std::any::type_name::<C>())
            .finish_non_exhaustive()
    }
}
