//! The future of a call guarded by a breaker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::permit::Ticket;
use super::{Breaker, CallError, Classifier};

/// Where a call is: not yet asked the breaker, running under a grant, or finished.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Unasked,
    Running(Ticket),
    Done,
}

pin_project! {
    /// A call guarded by a [`Breaker`]: asks for a permit when first polled, then runs the
    /// wrapped future and records its classified outcome. Dropping it mid-call records nothing
    /// (a half-open trial slot goes back).
    ///
    /// It keeps only the grant (not a whole [`Permit`](super::Permit)) and settles it from its
    /// own drop: the smallest state to move in and out on every poll.
    ///
    /// Returned by [`Breaker::call`] and [`Breaker::call_classified`].
    #[must_use = "futures do nothing unless polled"]
    pub struct BreakerCall<'a, F, C> {
        #[pin]
        call: F,
        breaker: &'a Breaker,
        classifier: C,
        phase: Phase,
    }

    impl<'a, F, C> PinnedDrop for BreakerCall<'a, F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Phase::Running(ticket) = *this.phase {
                ticket.release(this.breaker);
            }
        }
    }
}

impl<'a, F, C> BreakerCall<'a, F, C> {
    pub(crate) fn new(breaker: &'a Breaker, call: F, classifier: C) -> Self {
        BreakerCall {
            call,
            breaker,
            classifier,
            phase: Phase::Unasked,
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
        if let Phase::Unasked = this.phase {
            match this.breaker.grant() {
                Ok(ticket) => *this.phase = Phase::Running(ticket),
                Err(rejected) => {
                    *this.phase = Phase::Done;
                    return Poll::Ready(Err(CallError::Rejected(rejected)));
                }
            }
        }
        let result = ready!(this.call.poll(cx));
        if let Phase::Running(ticket) = std::mem::replace(this.phase, Phase::Done) {
            ticket.record(this.breaker, this.classifier.classify(&result));
        }
        Poll::Ready(result.map_err(CallError::Inner))
    }
}

impl<F, C> fmt::Debug for BreakerCall<'_, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerCall")
            .field("breaker", &self.breaker.name())
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}
