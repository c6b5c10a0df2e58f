//! The response future of a [`BreakerService`](super::BreakerService).

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;
use tollgate::breaker::{Breaker, Classifier, NotPermitted, PermitGuard};

use super::{BreakerError, circuit_open_response};

pin_project! {
    /// The inner call with the breaker's permit, or the rejection. Records the classified
    /// outcome when the inner call returns; dropped before that, it records nothing (a
    /// half-open trial slot goes back).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C, H = Arc<Breaker>>
    where
        H: Deref<Target = Breaker>,
    {
        #[pin]
        kind: Kind<F, H>,
        classifier: C,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, H>
    where
        H: Deref<Target = Breaker>,
    {
        // The permit stays in place and is settled there (`PermitGuard::settle`): moving it
        // out just after `call` wrote it stalled the CPU's store forwarding (session 14).
        Called { #[pin] call: F, permit: PermitGuard<H> },
        Rejected { rejected: NotPermitted },
    }
}

impl<F, C, H: Deref<Target = Breaker>> ResponseFuture<F, C, H> {
    #[inline]
    pub(crate) fn called(call: F, permit: PermitGuard<H>, classifier: C) -> Self {
        ResponseFuture {
            kind: Kind::Called { call, permit },
            classifier,
        }
    }

    pub(crate) fn rejected(rejected: NotPermitted, classifier: C) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { rejected },
            classifier,
        }
    }
}

impl<F, C, H, T, E> ResponseFuture<F, C, H>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
    H: Deref<Target = Breaker>,
{
    /// The inner call's result, its classified outcome recorded; or the rejection.
    #[inline(always)]
    fn poll_call(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Result<T, E>, &NotPermitted>> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { call, permit } => {
                let result = ready!(call.poll(cx));
                permit.settle(this.classifier.classify(&result));
                Poll::Ready(Ok(result))
            }
            KindProj::Rejected { rejected } => Poll::Ready(Err(rejected)),
        }
    }
}

impl<F, C, H, T, E> Future for ResponseFuture<F, C, H>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
    H: Deref<Target = Breaker>,
{
    type Output = Result<T, BreakerError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.poll_call(cx)) {
            Ok(result) => result.map_err(BreakerError::Inner),
            Err(rejected) => Err(BreakerError::Open(rejected.clone())),
        })
    }
}

pin_project! {
    /// The future of an [`HttpBreakerService`](super::HttpBreakerService): the inner call's
    /// result exactly as it came (its classified outcome recorded), or the `503` of
    /// [`circuit_open_response`](super::circuit_open_response).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct HttpResponseFuture<F, C, H = Arc<Breaker>>
    where
        H: Deref<Target = Breaker>,
    {
        #[pin]
        inner: ResponseFuture<F, C, H>,
    }
}

impl<F, C, H: Deref<Target = Breaker>> HttpResponseFuture<F, C, H> {
    #[inline]
    pub(crate) fn new(inner: ResponseFuture<F, C, H>) -> Self {
        HttpResponseFuture { inner }
    }
}

impl<F, C, H, B, E> Future for HttpResponseFuture<F, C, H>
where
    F: Future<Output = Result<Response<B>, E>>,
    C: Classifier<Response<B>, E>,
    H: Deref<Target = Breaker>,
    B: From<Bytes>,
{
    type Output = Result<Response<B>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll_call(cx)) {
            Ok(result) => result,
            Err(rejected) => Ok(circuit_open_response(rejected)),
        })
    }
}
