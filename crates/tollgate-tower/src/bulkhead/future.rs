//! The response future of a [`BulkheadService`](super::BulkheadService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tollgate::policy::{BulkheadFull, OwnedBulkheadSlot};

use super::BulkheadError;

pin_project! {
    /// The inner call holding its bulkhead slot, or the rejection. The slot is freed when the
    /// inner call returns or when this future is dropped.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Called { #[pin] call: F, slot: Option<OwnedBulkheadSlot> },
        Rejected { full: BulkheadFull },
    }
}

impl<F> ResponseFuture<F> {
    #[inline]
    pub(crate) fn called(call: F, slot: OwnedBulkheadSlot) -> Self {
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

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, BulkheadError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { call, slot } => {
                let result = ready!(call.poll(cx));
                drop(slot.take());
                Poll::Ready(result.map_err(BulkheadError::Inner))
            }
            KindProj::Rejected { full } => Poll::Ready(Err(BulkheadError::Full(*full))),
        }
    }
}
