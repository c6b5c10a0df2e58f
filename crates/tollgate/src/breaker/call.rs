//! The future of a call guarded by a breaker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{Breaker, CallError, Classifier, Permit};

pin_project! {
    /// A call guarded by a [`Breaker`]: asks for a permit when first polled, then runs the
    /// wrapped future and records its classified outcome. Dropping it mid-call records nothing.
    ///
    /// Returned by [`Breaker::call`] and [`Breaker::call_classified`].
    #[must_use = "futures do nothing unless polled"]
    pub struct BreakerCall<'a, F, C> {
        #[pin]
        call: F,
        breaker: &'a Breaker,
        classifier: C,
        permit: Option<Permit<'a>>,
        asked: bool,
    }
}

impl<'a, F, C> BreakerCall<'a, F, C> {
    pub(crate) fn new(breaker: &'a Breaker, call: F, classifier: C) -> Self {
        BreakerCall {
            call,
            breaker,
            classifier,
            permit: None,
            asked: false,
        }
    }
}

impl<F, C, T, E> Future for BreakerCall<'_, F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
{
    type Output = Result<T, CallError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !*this.asked {
            *this.asked = true;
            match this.breaker.try_acquire() {
                Ok(permit) => *this.permit = Some(permit),
                Err(rejected) => return Poll::Ready(Err(CallError::Rejected(rejected))),
            }
        }
        let result = ready!(this.call.poll(cx));
        if let Some(permit) = this.permit.take() {
            permit.record(this.classifier.classify(&result));
        }
        Poll::Ready(result.map_err(CallError::Inner))
    }
}

impl<F, C> fmt::Debug for BreakerCall<'_, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerCall")
            .field("breaker", &self.breaker.name())
            .field("permit", &self.permit)
            .finish_non_exhaustive()
    }
}
