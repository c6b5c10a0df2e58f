//! One adapter from "rejected" to an HTTP answer, for every tollgate layer.
//!
//! A tollgate service ([`BreakerService`](crate::breaker::BreakerService),
//! [`BulkheadService`](crate::bulkhead::BulkheadService),
//! [`CoalesceService`](crate::coalesce::CoalesceService)) fails a call it turns away with a typed
//! error that is either a rejection or the inner service's own error. [`Respond`] wraps such a
//! service and answers the rejections with their HTTP response (the response of its
//! [`HttpRejection`]), handing the inner error back unchanged — so an axum router's
//! `Infallible` stays `Infallible`.
//!
//! Rejections are decided per call, never in `poll_ready` ([`Rejecting`]): a readiness error is
//! always the inner service's, so the adapter can keep its error type. Each service names the
//! future that answers for it ([`Rejecting::Answering`]): the breaker's and the bulkhead's
//! ([`breaker::HttpResponseFuture`](crate::breaker::HttpResponseFuture),
//! [`bulkhead::HttpResponseFuture`](crate::bulkhead::HttpResponseFuture)) answer a rejection
//! themselves and hand the inner result on as it came; the coalescing service's goes through
//! [`RespondFuture`].
//!
//! # Example
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tollgate::policy::Bulkhead;
//! use tollgate_tower::bulkhead::BulkheadLayer;
//! use tollgate_tower::respond::RespondLayer;
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let bulkhead = Bulkhead::new(1, Duration::ZERO);
//! let ok = tower::service_fn(|_req: Request<Full<Bytes>>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//! });
//! let mut svc = RespondLayer::wrapping(BulkheadLayer::new(bulkhead.clone())).layer(ok);
//! let _held = bulkhead.try_acquire_owned().unwrap();
//! let res = svc.call(Request::new(Full::default())).await.unwrap();
//! assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
//! # }
//! ```

mod future;
mod layer;

use std::future::Future;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use tower::Service;

pub use future::RespondFuture;
pub use layer::RespondLayer;

/// An error that is either a rejection, answered with an HTTP response, or the inner service's
/// own error.
pub trait HttpRejection {
    /// The inner service's error type.
    type Inner;

    /// A rejection becomes its response; the inner service's error is handed back.
    fn into_response<B: From<Bytes>>(self) -> Result<Response<B>, Self::Inner>;
}

/// A service whose rejections are decided per call: its `poll_ready` can fail only with the
/// inner service's error.
pub trait Rejecting<Req>: Service<Req, Error: HttpRejection> {
    /// The future of [`call_answering`](Self::call_answering).
    type Answering: Future<Output = Result<Self::Response, <Self::Error as HttpRejection>::Inner>>;

    /// `poll_ready`, with the inner service's error type.
    fn poll_inner_ready(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), <Self::Error as HttpRejection>::Inner>>;

    /// `call`, with a rejection answered by its HTTP response and the inner service's result
    /// handed on as it came. A service can answer in its own future rather than through
    /// [`RespondFuture`]'s detour through the typed error (`Result<Response, BulkheadError<E>>`
    /// and back: two more moves of the response, which on a bulkhead over HTTP cost more than
    /// the bulkhead itself).
    fn call_answering(&mut self, req: Req) -> Self::Answering;
}

/// Answers the rejections of a tollgate service with HTTP responses. Made by [`RespondLayer`]
/// (or a layer's `respond_unavailable`).
#[derive(Clone, Debug)]
pub struct Respond<S> {
    inner: S,
}

impl<S> Respond<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Respond { inner }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, Req> Service<Req> for Respond<S>
where
    S: Rejecting<Req>,
{
    type Response = S::Response;
    type Error = <S::Error as HttpRejection>::Inner;
    type Future = S::Answering;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_inner_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        self.inner.call_answering(req)
    }
}
