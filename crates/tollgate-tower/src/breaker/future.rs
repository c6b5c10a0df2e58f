//! The response future of a [`BreakerService`](super::BreakerService).

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tollgate::breaker::{Breaker, Classifier, NotPermitted, PermitGuard};

use super::BreakerError;

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
        Called { #[pin] call: F, permit: Option<PermitGuard<H>> },
        Rejected { rejected: NotPermitted },
    }
}

impl<F, C, H: Deref<Target = Breaker>> ResponseFuture<F, C, H> {
    #[inline]
    pub(crate) fn called(call: F, permit: PermitGuard<H>, classifier: C) -> Self {
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

impl<F, C, H, T, E> Future for ResponseFuture<F, C, H>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
    H: Deref<Target = Breaker>,
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
