//! The response future of a [`BulkheadService`](super::BulkheadService).

use std::borrow::Borrow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;
use tollgate::policy::{Bulkhead, BulkheadFull, BulkheadGuard};

use super::{BulkheadError, bulkhead_full_response};

pin_project! {
    /// The inner call holding its bulkhead slot, or the rejection. The slot is freed when the
    /// inner call returns or when this future is dropped.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, H = Bulkhead>
    where
        H: Borrow<Bulkhead>,
    {
        #[pin]
        kind: Kind<F, H>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F, H>
    where
        H: Borrow<Bulkhead>,
    {
        Called { #[pin] call: F, slot: Option<BulkheadGuard<H>> },
        Rejected { full: BulkheadFull },
    }
}

impl<F, H: Borrow<Bulkhead>> ResponseFuture<F, H> {
    #[inline]
    pub(crate) fn called(call: F, slot: BulkheadGuard<H>) -> Self {
        let slot = Some(slot);
        ResponseFuture {
            kind: Kind::Called { call, slot },
        }
    }

    pub(crate) fn rejected(full: BulkheadFull) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { full },
        }
    }
}

impl<F, H, T, E> ResponseFuture<F, H>
where
    F: Future<Output = Result<T, E>>,
    H: Borrow<Bulkhead>,
{
    /// The inner call's result, its slot freed; or the rejection.
    #[inline(always)]
    fn poll_call(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Result<T, E>, BulkheadFull>> {
        match self.project().kind.project() {
            KindProj::Called { call, slot } => {
                let result = ready!(call.poll(cx));
                drop(slot.take());
                Poll::Ready(Ok(result))
            }
            KindProj::Rejected { full } => Poll::Ready(Err(*full)),
        }
    }
}

impl<F, H, T, E> Future for ResponseFuture<F, H>
where
    F: Future<Output = Result<T, E>>,
    H: Borrow<Bulkhead>,
{
    type Output = Result<T, BulkheadError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.poll_call(cx)) {
            Ok(result) => result.map_err(BulkheadError::Inner),
            Err(full) => Err(BulkheadError::Full(full)),
        })
    }
}

pin_project! {
    /// The future of an [`HttpBulkheadService`](super::HttpBulkheadService): the inner call's
    /// result exactly as it came, or the `503` of
    /// [`bulkhead_full_response`](super::bulkhead_full_response).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct HttpResponseFuture<F, H = Bulkhead>
    where
        H: Borrow<Bulkhead>,
    {
        #[pin]
        inner: ResponseFuture<F, H>,
    }
}

impl<F, H: Borrow<Bulkhead>> HttpResponseFuture<F, H> {
    #[inline]
    pub(crate) fn new(inner: ResponseFuture<F, H>) -> Self {
        HttpResponseFuture { inner }
    }
}

impl<F, H, B, E> Future for HttpResponseFuture<F, H>
where
    F: Future<Output = Result<Response<B>, E>>,
    H: Borrow<Bulkhead>,
    B: From<Bytes>,
{
    type Output = Result<Response<B>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(self.project().inner.poll_call(cx)) {
            Ok(result) => result,
            Err(full) => Ok(bulkhead_full_response(&full)),
        })
    }
}
