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
//! away. The slot is a guard owned by the service until the call, then by the response future:
//! it is freed when the inner call completes **or** when the response future is dropped (a
//! client that went away), never leaked. A streamed response body is not covered: the slot is
//! freed once the response head is returned.
//!
//! # How the bulkhead is held
//! A layer holds its bulkhead through a handle `H`: a [`Bulkhead`] (the default; a clone is
//! one reference count), or a `&'static Bulkhead` — one in a `static`, or leaked at start-up
//! with `Box::leak`. Each call's slot holds a clone of the handle; a `&'static` clone is a
//! copy, so a call then touches no reference count besides the slot count itself.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::LazyLock;
//! use std::time::Duration;
//! use tollgate::policy::Bulkhead;
//! use tollgate_tower::bulkhead::BulkheadLayer;
//! use tower::{Layer, Service};
//!
//! static REPORTS: LazyLock<Bulkhead> = LazyLock::new(|| Bulkhead::new(8, Duration::ZERO));
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut svc = BulkheadLayer::new(&*REPORTS)
//!     .layer(tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n + 1) }));
//! assert_eq!(svc.call(1).await.unwrap(), 2);
//! assert_eq!(REPORTS.available(), 8);
//! # }
//! ```
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

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use tollgate::policy::{Bulkhead, BulkheadFull, BulkheadGuard, OwnedBulkheadSlot};
use tower::Service;

pub use error::{BulkheadError, bulkhead_full_response};
pub use future::{HttpResponseFuture, ResponseFuture};
pub use layer::{BulkheadLayer, HttpBulkheadLayer};

use crate::respond::{Rejecting, Respond};

/// A wait for a slot of a full bulkhead, boxed (only a full bulkhead with a `max_wait` pays).
/// It holds a `Bulkhead` clone rather than the layer's handle, so that it is `'static`
/// whatever the handle: a `'static` bound on the handle would make rustc reject as not `Send`
/// the async blocks that hold a service over a `&'static Bulkhead` ("implementation of `Borrow`
/// is not general enough").
/// Boxed twice so that the service's field is one thin pointer (see [`BulkheadService`]'s
/// fields).
type Waiting = Pin<Box<dyn Future<Output = Result<OwnedBulkheadSlot, BulkheadFull>> + Send + Sync>>;

/// What a layer can hold its bulkhead by: a [`Bulkhead`] or a `&'static Bulkhead` (see [how
/// the bulkhead is held](self#how-the-bulkhead-is-held)). Implemented for every
/// `Borrow<Bulkhead> + Clone` type; a handle must always lead to the same bulkhead (a guard
/// gives its slot back through the handle it holds).
pub trait BulkheadHandle: Borrow<Bulkhead> + Clone + Send + Sync {}

impl<H: Borrow<Bulkhead> + Clone + Send + Sync> BulkheadHandle for H {}

/// A service limited by a bulkhead held by `H`; calls turned away are
/// [`BulkheadError::Full`]. Made by [`BulkheadLayer`].
pub struct BulkheadService<S, H: Borrow<Bulkhead> = Bulkhead> {
    inner: S,
    bulkhead: H,
    // Every field is one word that a new service writes whole (an `Option` of a pointer or of
    // a non-zero number): moving a service just made (as `oneshot` on a clone does) then
    // never reads 16 bytes written in pieces, which stalls the CPU's store forwarding —
    // measured: a `Result` or a fat `Option` here cost 5–8 ns a call.
    /// The slot `poll_ready` took for the next call.
    slot: Option<BulkheadGuard<H>>,
    /// Or: the next call is turned away.
    full: Option<BulkheadFull>,
    waiting: Option<Box<Waiting>>,
}

/// A [`BulkheadService`] whose rejections are answered with the `503` of
/// [`bulkhead_full_response`]. Made by [`HttpBulkheadLayer`].
pub type HttpBulkheadService<S, H = Bulkhead> = Respond<BulkheadService<S, H>>;

impl<S, H: BulkheadHandle> BulkheadService<S, H> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: H) -> Self {
        BulkheadService {
            inner,
            bulkhead,
            slot: None,
            full: None,
            waiting: None,
        }
    }

    /// Decides the next call's slot: taken at once, waited for, or refused. Taking a free slot
    /// is inlined into the caller; the rest ([`Self::poll_reserve_slow`]) is not.
    #[inline]
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.slot.is_some() || self.full.is_some() {
            return Poll::Ready(());
        }
        if self.waiting.is_none()
            && let Ok(slot) = BulkheadGuard::try_acquire(&self.bulkhead)
        {
            self.slot = Some(slot);
            return Poll::Ready(());
        }
        self.poll_reserve_slow(cx)
    }

    /// [`Self::poll_reserve`] when no slot was free at once: wait for one, or refuse.
    #[inline(never)]
    fn poll_reserve_slow(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let waiting = match self.waiting.as_mut() {
            Some(waiting) => waiting,
            None => match BulkheadGuard::try_acquire(&self.bulkhead) {
                Err(_) if !self.bulkhead.borrow().max_wait().is_zero() => {
                    let bulkhead = self.bulkhead.borrow().clone();
                    self.waiting.insert(Box::new(Box::pin(async move {
                        bulkhead.acquire_owned().await
                    })))
                }
                taken => return self.reserve(taken),
            },
        };
        let waited = ready!(waiting.as_mut().as_mut().poll(cx));
        self.waiting = None;
        let waited = waited.and_then(|slot| match slot.rehold(self.bulkhead.clone()) {
            Ok(slot) => Ok(slot),
            // Not the layer's bulkhead (a handle whose `borrow` changed): hand the slot back
            // and take one of the handle's, if it has one free.
            Err(slot) => {
                drop(slot);
                BulkheadGuard::try_acquire(&self.bulkhead)
            }
        });
        self.reserve(waited)
    }

    /// `poll_ready`, with the inner service's error type.
    #[inline]
    fn poll_slot_then_inner<Req>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>>
    where
        S: Service<Req>,
    {
        ready!(self.poll_reserve(cx));
        if self.full.is_some() {
            // Turned away: the inner service will not be called, so its readiness is moot.
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx)
    }

    fn reserve(&mut self, reserved: Result<BulkheadGuard<H>, BulkheadFull>) -> Poll<()> {
        match reserved {
            Ok(slot) => self.slot = Some(slot),
            Err(full) => {
                tracing::debug!(max = full.max_concurrent(), "bulkhead layer: call rejected");
                self.full = Some(full);
            }
        }
        Poll::Ready(())
    }
}

impl<S, H, Req> Service<Req> for BulkheadService<S, H>
where
    S: Service<Req>,
    H: BulkheadHandle,
{
    type Response = S::Response;
    type Error = BulkheadError<S::Error>;
    type Future = ResponseFuture<S::Future, H>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_slot_then_inner::<Req>(cx)
            .map_err(BulkheadError::Inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        // Without a `poll_ready` first (a caller breaking the contract) a free slot is still
        // taken, never waited for.
        let reserved = match (self.slot.take(), self.full.take()) {
            (Some(slot), _) => Ok(slot),
            (None, Some(full)) => Err(full),
            (None, None) => BulkheadGuard::try_acquire(&self.bulkhead),
        };
        match reserved {
            Ok(slot) => ResponseFuture::called(self.inner.call(req), slot),
            Err(full) => ResponseFuture::rejected(full),
        }
    }
}

impl<S, H, Req, B> Rejecting<Req> for BulkheadService<S, H>
where
    S: Service<Req, Response = Response<B>>,
    H: BulkheadHandle,
    B: From<Bytes>,
{
    type Answering = HttpResponseFuture<S::Future, H>;

    #[inline]
    fn call_answering(&mut self, req: Req) -> Self::Answering {
        HttpResponseFuture::new(self.call(req))
    }

    #[inline]
    fn poll_inner_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.poll_slot_then_inner::<Req>(cx)
    }
}

impl<S: Clone, H: BulkheadHandle> Clone for BulkheadService<S, H> {
    /// A clone shares the bulkhead but not a slot reserved by this service's `poll_ready`.
    fn clone(&self) -> Self {
        BulkheadService::new(self.inner.clone(), self.bulkhead.clone())
    }
}

impl<S, H: Borrow<Bulkhead>> fmt::Debug for BulkheadService<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadService")
            .field("bulkhead", self.bulkhead.borrow())
            .field("slot_reserved", &self.slot.is_some())
            .field("turned_away", &self.full.is_some())
            .finish_non_exhaustive()
    }
}
