//! Bulkhead middleware: at most N calls of the inner service at once.
//!
//! The service reserves a slot of a [`tollgate::policy::Bulkhead`] in `poll_ready` (as tower's
//! `ConcurrencyLimit` does; a full bulkhead with a `max_wait` is waited for there, at most that
//! long), and the call's named [`ResponseFuture`] owns it (a [`BulkheadGuard`] holding the
//! bulkhead through the layer's handle) until the inner service has returned its response. No slot: the inner service is **not called** and the call fails with
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
//! with `Box::leak`. Each call's slot holds a handle: the service's own, which the service
//! clones back for its next call. A `&'static` clone is a copy, so a call then touches no
//! reference count besides the slot count itself.
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
/// panicked while the service changed state (taking, waiting for or handing on a slot): the
/// service then no longer holds its bulkhead, and gave back any slot it had taken. `Bulkhead`
/// and `&'static Bulkhead` never panic there. A panic of the handle elsewhere (cloning the
/// service, its `Debug`), of the inner service or of a tracing subscriber leaves the service as
/// it was. A wait for a slot that panics (a runtime without tokio's timer) panics again when
/// polled again: drop the service.
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
/// state but `Gone` holds the handle: a slot through it, a wait beside it.
enum State<H: Borrow<Bulkhead>> {
    /// Nothing decided: the next `poll_ready` takes a slot, waits for one, or refuses.
    Idle(H),
    /// The slot `poll_ready` took for the next call, holding the bulkhead through the handle.
    Slot(BulkheadGuard<H>),
    /// `poll_ready` found no slot (and waited as long as `max_wait` allows): the next call is
    /// turned away.
    Full(H),
    /// A full bulkhead with a `max_wait`: waiting for a slot.
    Waiting(Box<Wait<H>>),
    /// Only inside [`BulkheadService::transition`]; left behind by a panic there, which can only
    /// come from the handle's `borrow` or `clone`.
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

    /// The handle, in every state but `Gone` (which panics: see the type's docs).
    fn handle(&self) -> &H {
        match &self.state {
            State::Idle(bulkhead) | State::Full(bulkhead) => bulkhead,
            State::Slot(slot) => slot.handle(),
            State::Waiting(wait) => &wait.bulkhead,
            State::Gone => gone(),
        }
    }

    /// Moves the state through `change`, which owns it meanwhile. `change` cannot reach the
    /// service (it is borrowed here), so the `Gone` standing in for the state is still there
    /// when the new state comes back; only a panic inside `change` leaves it behind.
    #[inline]
    fn transition<R>(&mut self, change: impl FnOnce(State<H>) -> (State<H>, R)) -> R {
        let (state, out) = change(std::mem::replace(&mut self.state, State::Gone));
        // The `Gone` holds nothing: forgotten rather than dropped, because an assignment
        // called the state's drop out of line, not knowing it holds `Gone` (16 % of a
        // request's samples in `perf`).
        std::mem::forget(std::mem::replace(&mut self.state, state));
        out
    }

    /// Decides the next call's slot: taken at once, waited for, or refused. Taking a free slot
    /// is inlined into the caller; starting a wait or refusing ([`Self::refuse_or_wait`]) and
    /// the end of a wait ([`Self::waited`]) are not. The wait is polled in place.
    #[inline]
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.state {
                State::Slot(_) | State::Full(_) => return Poll::Ready(()),
                State::Gone => gone(),
                State::Waiting(wait) => {
                    let waited = ready!(wait.waiting.as_mut().poll(cx));
                    self.waited(waited);
                    return Poll::Ready(());
                }
                State::Idle(_) => {
                    let refused = self.transition(|state| match state {
                        State::Idle(bulkhead) => match BulkheadGuard::try_hold(bulkhead) {
                            Ok(slot) => (State::Slot(slot), None),
                            Err((bulkhead, full)) => (State::Idle(bulkhead), Some(full)),
                        },
                        other => (other, None), // not reached: the state is `Idle`
                    });
                    match refused {
                        None => return Poll::Ready(()),
                        // Refused (ready), or waiting (polled by the next turn of the loop).
                        Some(full) => self.refuse_or_wait(full),
                    }
                }
            }
        }
    }

    /// No slot was free at once: wait for one if the bulkhead has a `max_wait`, else refuse.
    #[inline(never)]
    fn refuse_or_wait(&mut self, full: BulkheadFull) {
        let bulkhead = self.handle().borrow();
        if bulkhead.max_wait().is_zero() {
            self.transition(|state| match state {
                State::Idle(bulkhead) => (State::Full(bulkhead), ()),
                other => (other, ()), // not reached: the state is `Idle`
            });
            return log_refusal(full);
        }
        let shared = bulkhead.clone();
        let waiting: Waiting = Box::pin(async move { shared.acquire_owned().await });
        self.transition(|state| match state {
            State::Idle(bulkhead) => (State::Waiting(Box::new(Wait { bulkhead, waiting })), ()),
            other => (other, ()), // not reached: the state is `Idle`
        });
    }

    /// The wait for a slot ended: the slot is held through the layer's handle, or the next call
    /// is turned away. Should the handle lead elsewhere by now (which a handle must not do),
    /// the slot goes back and one of the handle's bulkhead is taken if free.
    #[inline(never)]
    fn waited(&mut self, waited: Result<OwnedBulkheadSlot, BulkheadFull>) {
        let refused = self.transition(|state| {
            let wait = match state {
                State::Waiting(wait) => wait,
                other => return (other, None), // not reached: the state is `Waiting`
            };
            let Wait { bulkhead, .. } = *wait;
            let slot = match waited {
                Ok(slot) => slot,
                Err(full) => return (State::Full(bulkhead), Some(full)),
            };
            match slot.rehold(bulkhead.clone()) {
                Ok(slot) => (State::Slot(slot), None),
                // Not the layer's bulkhead (a handle whose `borrow` changed): hand the slot back
                // and take one of the handle's, if it has one free.
                Err(slot) => {
                    drop(slot);
                    match BulkheadGuard::try_hold(bulkhead) {
                        Ok(slot) => (State::Slot(slot), None),
                        Err((bulkhead, full)) => (State::Full(bulkhead), Some(full)),
                    }
                }
            }
        });
        if let Some(full) = refused {
            log_refusal(full);
        }
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

    /// The next call's slot, or its refusal. What `poll_ready` decided is used up (the service
    /// is idle again); the refusal is rebuilt from the bulkhead. A call without `poll_ready`
    /// first (a caller breaking the contract) still takes a free slot, never waits for one, and
    /// leaves a wait in progress as it is.
    #[inline]
    fn take_reserved(&mut self) -> Result<BulkheadGuard<H>, BulkheadFull> {
        self.transition(|state| match state {
            State::Slot(slot) => (State::Idle(slot.handle().clone()), Ok(slot)),
            State::Full(bulkhead) => {
                let full = bulkhead.borrow().refusal();
                (State::Idle(bulkhead), Err(full))
            }
            State::Idle(bulkhead) => {
                let taken = BulkheadGuard::try_acquire(&bulkhead);
                (State::Idle(bulkhead), taken)
            }
            State::Waiting(wait) => {
                let taken = BulkheadGuard::try_acquire(&wait.bulkhead);
                (State::Waiting(wait), taken)
            }
            State::Gone => gone(),
        })
    }
}

fn log_refusal(full: BulkheadFull) {
    tracing::debug!(max = full.max_concurrent(), "bulkhead layer: call rejected");
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
    /// A clone shares the bulkhead but not what this service's `poll_ready` decided (a reserved
    /// slot, a refusal, a wait).
    fn clone(&self) -> Self {
        BulkheadService::new(self.inner.clone(), self.handle().clone())
    }
}

impl<S, H: Borrow<Bulkhead>> fmt::Debug for BulkheadService<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("BulkheadService");
        let next = match &self.state {
            State::Idle(bulkhead) => out
                .field("bulkhead", bulkhead.borrow())
                .field("next_call", &"undecided"),
            State::Slot(slot) => out
                .field("bulkhead", slot.handle().borrow())
                .field("next_call", &"slot reserved"),
            State::Full(bulkhead) => out
                .field("bulkhead", bulkhead.borrow())
                .field("next_call", &"turned away"),
            State::Waiting(wait) => out
                .field("bulkhead", wait.bulkhead.borrow())
                .field("next_call", &"waiting for a slot"),
            State::Gone => out.field("next_call", &"none: its handle panicked"),
        };
        next.finish_non_exhaustive()
    }
}
