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
type Waiting = Pin<Box<dyn Future<Output = Result<OwnedBulkheadSlot, BulkheadFull>> + Send + Sync>>;

/// What a layer can hold its bulkhead by: a [`Bulkhead`] or a `&'static Bulkhead` (see [how
/// the bulkhead is held](self#how-the-bulkhead-is-held)). Implemented for every
/// `Borrow<Bulkhead> + Clone` type; a handle must always lead to the same bulkhead (a guard
/// gives its slot back through the handle it holds).
pub trait BulkheadHandle: Borrow<Bulkhead> + Clone + Send + Sync {}

impl<H: Borrow<Bulkhead> + Clone + Send + Sync> BulkheadHandle for H {}

/// A service limited by a bulkhead held by `H`; calls turned away are
/// [`BulkheadError::Full`]. Made by [`BulkheadLayer`].
///
/// # Panics
/// Polled, called or cloned again after its handle's own `Borrow::borrow` or `Clone::clone`
/// panicked inside it (the service then no longer holds its bulkhead). `Bulkhead` and
/// `&'static Bulkhead` never panic there.
pub struct BulkheadService<S, H: Borrow<Bulkhead> = Bulkhead> {
    inner: S,
    /// The handle and the next call's slot, in one tag and one pointer for the handles of this
    /// crate, which the compiler moves in two registers. Four words before (handle, slot,
    /// refusal, wait): `oneshot` on a fresh clone read them back in 16-byte pieces the clone
    /// had written in other pieces, a store-forwarding stall of ≈ 10 ns a request when a call
    /// came between the clone and `oneshot` (`docs/PERFORMANCE.md`, session 12).
    state: State<H>,
}

/// A [`BulkheadService`]'s bulkhead and what its `poll_ready` decided for the next call. Every
/// state holds the handle: a slot through it, a wait beside it.
enum State<H: Borrow<Bulkhead>> {
    /// Nothing decided: the next `poll_ready` takes a slot.
    Idle(H),
    /// The slot `poll_ready` took for the next call, holding the bulkhead through the handle.
    Slot(BulkheadGuard<H>),
    /// `poll_ready` found no slot (and waited as long as `max_wait` allows): the next call is
    /// turned away.
    Full(H),
    /// A full bulkhead with a `max_wait`: waiting for a slot.
    Waiting(Box<Wait<H>>),
    /// Only while the state changes; left behind by a panic in the handle's `borrow` or
    /// `clone`.
    Gone,
}

/// The handle and the wait, boxed together: the state stays one pointer.
struct Wait<H> {
    bulkhead: H,
    waiting: Waiting,
}

/// A [`BulkheadService`] whose rejections are answered with the `503` of
/// [`bulkhead_full_response`]. Made by [`HttpBulkheadLayer`].
pub type HttpBulkheadService<S, H = Bulkhead> = Respond<BulkheadService<S, H>>;

impl<S, H: BulkheadHandle> BulkheadService<S, H> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: H) -> Self {
        BulkheadService {
            inner,
            state: State::Idle(bulkhead),
        }
    }

    /// The handle, whatever the state.
    fn handle(&self) -> &H {
        match &self.state {
            State::Idle(bulkhead) | State::Full(bulkhead) => bulkhead,
            State::Slot(slot) => slot.handle(),
            State::Waiting(wait) => &wait.bulkhead,
            State::Gone => gone(),
        }
    }

    /// Decides the next call's slot: taken at once, waited for, or refused. Taking a free slot
    /// is inlined into the caller; waiting and refusing ([`Self::refused`], [`Self::poll_wait`])
    /// are not.
    #[inline]
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.state {
            State::Idle(_) | State::Waiting(_) => {}
            State::Slot(_) | State::Full(_) => return Poll::Ready(()),
            State::Gone => gone(),
        }
        let (state, poll) = match std::mem::replace(&mut self.state, State::Gone) {
            State::Idle(bulkhead) => match BulkheadGuard::try_hold(bulkhead) {
                Ok(slot) => (State::Slot(slot), Poll::Ready(())),
                Err((bulkhead, full)) => Self::refused(bulkhead, full, cx),
            },
            State::Waiting(wait) => Self::poll_wait(wait, cx),
            // Not reached: `Slot` and `Full` returned above, `Gone` panicked.
            decided => (decided, Poll::Ready(())),
        };
        self.put_back(state);
        poll
    }

    /// No slot was free at once: wait for one if the bulkhead has a `max_wait`, else refuse.
    #[inline(never)]
    fn refused(bulkhead: H, full: BulkheadFull, cx: &mut Context<'_>) -> (State<H>, Poll<()>) {
        let max_wait = bulkhead.borrow().max_wait();
        if max_wait.is_zero() {
            return Self::full(bulkhead, full);
        }
        let shared = bulkhead.borrow().clone();
        let wait = Box::new(Wait {
            bulkhead,
            waiting: Box::pin(async move { shared.acquire_owned().await }),
        });
        Self::poll_wait(wait, cx)
    }

    /// Polls the wait for a slot.
    #[inline(never)]
    fn poll_wait(mut wait: Box<Wait<H>>, cx: &mut Context<'_>) -> (State<H>, Poll<()>) {
        let waited = match wait.waiting.as_mut().poll(cx) {
            Poll::Pending => return (State::Waiting(wait), Poll::Pending),
            Poll::Ready(waited) => waited,
        };
        let Wait { bulkhead, .. } = *wait;
        let slot = match waited {
            Ok(slot) => slot,
            Err(full) => return Self::full(bulkhead, full),
        };
        match slot.rehold(bulkhead.clone()) {
            Ok(slot) => (State::Slot(slot), Poll::Ready(())),
            // Not the layer's bulkhead (a handle whose `borrow` changed): hand the slot back
            // and take one of the handle's, if it has one free.
            Err(slot) => {
                drop(slot);
                match BulkheadGuard::try_hold(bulkhead) {
                    Ok(slot) => (State::Slot(slot), Poll::Ready(())),
                    Err((bulkhead, full)) => Self::full(bulkhead, full),
                }
            }
        }
    }

    fn full(bulkhead: H, full: BulkheadFull) -> (State<H>, Poll<()>) {
        tracing::debug!(max = full.max_concurrent(), "bulkhead layer: call rejected");
        (State::Full(bulkhead), Poll::Ready(()))
    }

    /// `poll_ready`, with the inner service's error type.
    #[inline]
    fn poll_slot_then_inner<Req>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>>
    where
        S: Service<Req>,
    {
        ready!(self.poll_reserve(cx));
        if let State::Full(_) = self.state {
            // Turned away: the inner service will not be called, so its readiness is moot.
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx)
    }

    /// The next call's slot, or its refusal; the service is idle again.
    #[inline]
    fn take_reserved(&mut self) -> Result<BulkheadGuard<H>, BulkheadFull> {
        let (state, reserved) = match std::mem::replace(&mut self.state, State::Gone) {
            State::Slot(slot) => (State::Idle(slot.handle().clone()), Ok(slot)),
            State::Full(bulkhead) => {
                let full = bulkhead.borrow().refusal();
                (State::Idle(bulkhead), Err(full))
            }
            // Without a `poll_ready` first (a caller breaking the contract) a free slot is
            // still taken, never waited for.
            State::Idle(bulkhead) => {
                let taken = BulkheadGuard::try_acquire(&bulkhead);
                (State::Idle(bulkhead), taken)
            }
            State::Waiting(wait) => {
                let taken = BulkheadGuard::try_acquire(&wait.bulkhead);
                (State::Waiting(wait), taken)
            }
            State::Gone => gone(),
        };
        self.put_back(state);
        reserved
    }

    /// Puts the state back in place of the `Gone` it was replaced by. Nothing is dropped: an
    /// assignment would call the state's drop, out of line, not knowing the slot holds `Gone`
    /// (16 % of a request's samples in `perf`).
    #[inline]
    fn put_back(&mut self, state: State<H>) {
        let gone = std::mem::replace(&mut self.state, state);
        debug_assert!(matches!(gone, State::Gone), "a state was replaced twice");
        std::mem::forget(gone);
    }
}

/// A service whose handle panicked while its state changed holds no bulkhead any more.
#[cold]
fn gone() -> ! {
    panic!("BulkheadService used after its bulkhead handle panicked inside it")
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
        match self.take_reserved() {
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
        BulkheadService::new(self.inner.clone(), self.handle().clone())
    }
}

impl<S, H: Borrow<Bulkhead>> fmt::Debug for BulkheadService<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (bulkhead, next) = match &self.state {
            State::Idle(bulkhead) => (Some(bulkhead.borrow()), "undecided"),
            State::Slot(slot) => (Some(slot.handle().borrow()), "slot reserved"),
            State::Full(bulkhead) => (Some(bulkhead.borrow()), "turned away"),
            State::Waiting(wait) => (Some(wait.bulkhead.borrow()), "waiting for a slot"),
            State::Gone => (None, "handle panicked"),
        };
        f.debug_struct("BulkheadService")
            .field("bulkhead", &bulkhead)
            .field("next_call", &next)
            .finish_non_exhaustive()
    }
}
