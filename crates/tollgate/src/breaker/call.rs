//! The future of a call guarded by a breaker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::permit::Ticket;
use super::{Breaker, CallError, Classifier};

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
        // `Ticket::UNASKED` until first polled, the grant while the call runs, then
        // `Ticket::SETTLED`: the phase and the grant in two words.
        ticket: Ticket,
    }

    impl<'a, F, C> PinnedDrop for BreakerCall<'a, F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // A marker (not asked yet, or settled) releases nothing.
            this.ticket.release(this.breaker);
        }
    }
}

impl<'a, F, C> BreakerCall<'a, F, C> {
    pub(crate) fn new(breaker: &'a Breaker, call: F, classifier: C) -> Self {
        BreakerCall {
            call,
            breaker,
            classifier,
            ticket: Ticket::UNASKED,
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
        if *this.ticket == Ticket::UNASKED {
            match this.breaker.grant() {
                Ok(ticket) => *this.ticket = ticket,
                Err(rejected) => {
                    *this.ticket = Ticket::SETTLED;
                    return Poll::Ready(Err(CallError::Rejected(rejected)));
                }
            }
        }
        let result = ready!(this.call.poll(cx));
        let ticket = std::mem::replace(this.ticket, Ticket::SETTLED);
        if ticket.is_grant() {
            ticket.record(this.breaker, this.classifier.classify(&result));
        }
        Poll::Ready(result.map_err(CallError::Inner))
    }
}

impl<F, C> fmt::Debug for BreakerCall<'_, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerCall")
            .field("breaker", &self.breaker.name())
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}
