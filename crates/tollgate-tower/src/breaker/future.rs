//! The response future of a [`BreakerService`](super::BreakerService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tollgate::breaker::{Classifier, NotPermitted, OwnedPermit};

use super::BreakerError;

pin_project! {
    /// The inner call with the breaker's permit, or the rejection. Records the classified
    /// outcome when the inner call returns; dropped before that, it records nothing (a
    /// half-open trial slot goes back).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F>,
        classifier: C,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Called { #[pin] call: F, permit: Option<OwnedPermit> },
        Rejected { rejected: NotPermitted },
    }
}

impl<F, C> ResponseFuture<F, C> {
    #[inline]
    pub(crate) fn called(call: F, permit: OwnedPermit, classifier: C) -> Self {
        let permit = Some(permit);
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

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
{
    type Output = Result<T, BreakerError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { call, permit } => {
                let result = ready!(call.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record(this.classifier.classify(&result));
                }
                Poll::Ready(result.map_err(BreakerError::Inner))
            }
            KindProj::Rejected { rejected } => {
                Poll::Ready(Err(BreakerError::Open(rejected.clone())))
            }
        }
    }
}
