//! The response future of a [`CoalesceService`](super::CoalesceService).

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;
use tollgate::flight::{self, Turn};

use super::shared::SharedResponse;
use super::{CoalesceError, CoalescedBody};

pin_project! {
    /// A request passed through (no key), or this caller's [`Turn`] at a coalesced execution.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, B, K, E>
    where
        K: Hash,
        K: Eq,
    {
        #[pin]
        kind: Kind<F, B, K, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, K, E>
    where
        K: Hash,
        K: Eq,
    {
        Passthrough { #[pin] call: F },
        Shared {
            turn: Turn<K, Arc<SharedResponse>, CoalesceError<E>>,
            role_extension: bool,
            body: std::marker::PhantomData<fn() -> B>,
        },
    }
}

impl<F, B, K: Hash + Eq, E> ResponseFuture<F, B, K, E> {
    pub(crate) fn passthrough(call: F) -> Self {
        ResponseFuture {
            kind: Kind::Passthrough { call },
        }
    }

    pub(crate) fn shared(
        turn: Turn<K, Arc<SharedResponse>, CoalesceError<E>>,
        role_extension: bool,
    ) -> Self {
        ResponseFuture {
            kind: Kind::Shared {
                turn,
                role_extension,
                body: std::marker::PhantomData,
            },
        }
    }
}

impl<F, B, K, E> Future for ResponseFuture<F, B, K, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    K: Hash + Eq + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    type Output = Result<Response<CoalescedBody<B>>, CoalesceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { call } => Poll::Ready(
                ready!(call.poll(cx))
                    .map(|res| res.map(CoalescedBody::inner))
                    .map_err(CoalesceError::Inner),
            ),
            KindProj::Shared {
                turn,
                role_extension,
                ..
            } => {
                let outcome = ready!(Pin::new(turn).poll(cx));
                Poll::Ready(match outcome.result {
                    Ok(response) => Ok(SharedResponse::into_response(
                        response,
                        outcome.role,
                        *role_extension,
                    )),
                    Err(flight::Error::Failed(e)) => Err(e),
                    Err(flight::Error::Panicked(msg)) => Err(CoalesceError::Panicked(msg)),
                    Err(_) => Err(CoalesceError::Aborted),
                })
            }
        }
    }
}

impl<F, B, K: Hash + Eq, E> fmt::Debug for ResponseFuture<F, B, K, E> {
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
