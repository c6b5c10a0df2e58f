//! The generic [`Rejecting::Answering`](super::Rejecting::Answering): a tollgate future's
//! rejection turned into its response after the fact (used by
//! [`CoalesceService`](crate::coalesce::CoalesceService)).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use super::HttpRejection;

pin_project! {
    /// The inner service's future, its rejection turned into a response.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct RespondFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> RespondFuture<F> {
    pub(crate) fn new(inner: F) -> Self {
        RespondFuture { inner }
    }
}

impl<F, B, E> Future for RespondFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: HttpRejection,
    B: From<Bytes>,
{
    type Output = Result<Response<B>, E::Inner>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(ready!(self.project().inner.poll(cx)).or_else(HttpRejection::into_response))
    }
}
