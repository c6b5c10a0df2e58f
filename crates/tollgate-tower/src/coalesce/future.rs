//! The response future of a [`CoalesceService`](super::CoalesceService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::{CoalesceError, CoalescedBody};

type Shared<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<CoalescedBody<B>>, CoalesceError<E>>> + Send>>;

pin_project! {
    /// A request passed through (no key), or this caller's share of a coalesced execution.
    ///
    /// The shared case is boxed inside: it is this caller's turn at
    /// [`Flight::run`](tollgate::flight::Flight::run), a future with no name to store.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Passthrough { #[pin] call: F },
        Shared { call: Shared<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn passthrough(call: F) -> Self {
        ResponseFuture {
            kind: Kind::Passthrough { call },
        }
    }

    pub(crate) fn shared(
        call: impl Future<Output = Result<Response<CoalescedBody<B>>, CoalesceError<E>>>
        + Send
        + 'static,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Shared {
                call: Box::pin(call),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CoalescedBody<B>>, CoalesceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { call } => Poll::Ready(
                ready!(call.poll(cx))
                    .map(|res| res.map(CoalescedBody::inner))
                    .map_err(CoalesceError::Inner),
            ),
            KindProj::Shared { call } => call.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Passthrough { .. } => "passthrough",
            Kind::Shared { .. } => "shared",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}
