//! Bulkhead middleware: at most N calls of the inner service at once.
//!
//! The service reserves a slot of a [`tollgate::policy::Bulkhead`] in `poll_ready` (as tower's
//! `ConcurrencyLimit` does; a full bulkhead with a `max_wait` is waited for there, at most that
//! long), and the call's named [`ResponseFuture`] owns it
//! ([`OwnedBulkheadSlot`]) until the inner service has
//! returned its response. No slot: the inner service is **not called** and the call fails with
//! [`BulkheadError::Full`] — or, through [`HttpBulkheadLayer`], is answered with
//! `503 Service Unavailable` and a JSON body ([`bulkhead_full_response`]).
//!
//! # Concurrency and cancellation
//! Taking a slot is one atomic step, so `N` slots admit exactly `N` concurrent calls. `poll_ready`
//! never fails with a rejection: a bulkhead still full after `max_wait` turns the next call
//! away. The slot is a guard owned by the service until the call, then by the response future: it is freed when the inner call completes **or**
//! when the response future is dropped (a client that went away), never leaked. A streamed
//! response body is not covered: the slot is freed once the response head is returned.
//!
//! # Example
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use tollgate::policy::Bulkhead;
//! use tollgate_tower::bulkhead::{BulkheadError, BulkheadLayer};
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let bulkhead = Bulkhead::new(1, Duration::ZERO);
//! let mut svc = BulkheadLayer::new(bulkhead.clone())
//!     .layer(tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n * 2) }));
//! assert_eq!(svc.call(21).await.unwrap(), 42);
//!
//! let held = bulkhead.acquire().await.unwrap(); // someone else holds the only slot
//! assert!(matches!(svc.call(1).await, Err(BulkheadError::Full(_))));
//! drop(held);
//! assert_eq!(svc.call(1).await.unwrap(), 2);
//! # }
//! ```

mod error;
mod future;
mod layer;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tollgate::policy::{Bulkhead, BulkheadFull, OwnedBulkheadSlot};
use tower::Service;

pub use error::{BulkheadError, bulkhead_full_response};
pub use future::ResponseFuture;
pub use layer::{BulkheadLayer, HttpBulkheadLayer};

use crate::respond::{Rejecting, Respond};

type Reserved = Result<OwnedBulkheadSlot, BulkheadFull>;
type Waiting = Pin<Box<dyn Future<Output = Reserved> + Send + Sync>>;

/// A service limited by a bulkhead; calls turned away are [`BulkheadError::Full`]. Made by
/// [`BulkheadLayer`].
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
    /// The slot (or the rejection) `poll_ready` decided on for the next call.
    reserved: Option<Reserved>,
    /// A wait for a slot of a full bulkhead, boxed: only a full bulkhead with a `max_wait` pays.
    waiting: Option<Waiting>,
}

/// A [`BulkheadService`] whose rejections are answered with the `503` of
/// [`bulkhead_full_response`]. Made by [`HttpBulkheadLayer`].
pub type HttpBulkheadService<S> = Respond<BulkheadService<S>>;

impl<S> BulkheadService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: Bulkhead) -> Self {
        BulkheadService {
            inner,
            bulkhead,
            reserved: None,
            waiting: None,
        }
    }

    /// Decides the next call's slot: taken at once, waited for, or refused.
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.reserved.is_some() {
            return Poll::Ready(());
        }
        let waiting = match self.waiting.as_mut() {
            Some(waiting) => waiting,
            None => match self.bulkhead.try_acquire_owned() {
                Err(_) if !self.bulkhead.max_wait().is_zero() => {
                    let bulkhead = self.bulkhead.clone();
                    self.waiting
                        .insert(Box::pin(async move { bulkhead.acquire_owned().await }))
                }
                taken => return self.reserve(taken),
            },
        };
        let waited = ready!(waiting.as_mut().poll(cx));
        self.waiting = None;
        self.reserve(waited)
    }

    fn reserve(&mut self, reserved: Reserved) -> Poll<()> {
        if let Err(full) = &reserved {
            tracing::debug!(max = full.max_concurrent(), "bulkhead layer: call rejected");
        }
        self.reserved = Some(reserved);
        Poll::Ready(())
    }
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = BulkheadError<S::Error>;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_inner_ready(cx).map_err(BulkheadError::Inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        // Without a `poll_ready` first (a caller breaking the contract) a free slot is still
        // taken, never waited for.
        let reserved = self
            .reserved
            .take()
            .unwrap_or_else(|| self.bulkhead.try_acquire_owned());
        match reserved {
            Ok(slot) => ResponseFuture::called(self.inner.call(req), slot),
            Err(full) => ResponseFuture::rejected(full),
        }
    }
}

impl<S, Req> Rejecting<Req> for BulkheadService<S>
where
    S: Service<Req>,
{
    #[inline]
    fn poll_inner_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        ready!(self.poll_reserve(cx));
        if matches!(self.reserved, Some(Err(_))) {
            // Turned away: the inner service will not be called, so its readiness is moot.
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx)
    }
}

impl<S: Clone> Clone for BulkheadService<S> {
    /// A clone shares the bulkhead but not a slot reserved by this service's `poll_ready`.
    fn clone(&self) -> Self {
        BulkheadService::new(self.inner.clone(), self.bulkhead.clone())
    }
}

impl<S> fmt::Debug for BulkheadService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadService")
            .field("bulkhead", &self.bulkhead)
            .field("reserved", &self.reserved)
            .finish_non_exhaustive()
    }
}
