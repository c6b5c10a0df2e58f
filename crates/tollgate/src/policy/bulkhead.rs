//! Bulkhead: a bound on concurrent calls, with a bounded wait for a slot.
//!
//! Taking and returning a free slot is one atomic read-modify-write each; only callers that must
//! wait touch the notification queue. A slot is a guard, [`BulkheadGuard`], that holds its
//! bulkhead through a reference ([`BulkheadSlot`]) or a clone of the handle
//! ([`OwnedBulkheadSlot`], for spawned tasks and named futures). A `&'static Bulkhead` gives
//! `'static` slots that touch no reference count.

use std::borrow::Borrow;
use std::fmt;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::error::BulkheadFull;

#[derive(Debug)]
struct Slots {
    max: NonZeroUsize,
    max_wait: Duration,
    in_use: AtomicUsize,
    waiters: AtomicUsize,
    freed: Notify,
}

impl Slots {
    fn try_take(&self) -> bool {
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max.get()).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        if self.in_use.fetch_sub(1, Ordering::SeqCst) > self.max.get() {
            // Still full (a slot counted twice for a moment by `rehold`): nothing is freed, so
            // no waiter is woken, which would only send it to the back of the queue.
            return;
        }
        // Pairs with the waiter's increment before its re-check: either it sees the slot, or
        // we see it waiting and wake one waiter.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.freed.notify_one();
        }
    }
}

/// At most `max_concurrent` calls at once; a caller waits at most `max_wait` for a slot, then
/// gets [`BulkheadFull`]. Clones share the same slots (a clone is one reference count).
#[derive(Clone, Debug)]
pub struct Bulkhead {
    slots: Arc<Slots>,
}

/// A taken bulkhead slot, holding its bulkhead through `R`: a `&Bulkhead` ([`BulkheadSlot`])
/// or a `Bulkhead` ([`OwnedBulkheadSlot`]). Dropping it frees the slot.
///
/// With `R = &'static Bulkhead` (a bulkhead in a `static`, or leaked once at start-up) the
/// guard is `'static`, so it can be moved into a task, and taking it touches no reference
/// count.
#[must_use = "the slot is freed as soon as this guard is dropped"]
pub struct BulkheadGuard<R: Borrow<Bulkhead>> {
    bulkhead: R,
}

/// A taken bulkhead slot that borrows its bulkhead; dropping it frees the slot.
pub type BulkheadSlot<'a> = BulkheadGuard<&'a Bulkhead>;

/// A taken bulkhead slot that holds a clone of its bulkhead (one reference count), so it can
/// be moved into a spawned task or kept in a `'static` future; dropping it frees the slot.
pub type OwnedBulkheadSlot = BulkheadGuard<Bulkhead>;

impl<R: Borrow<Bulkhead>> BulkheadGuard<R> {
    /// Takes a free slot now, without waiting (whatever `max_wait` says), holding the bulkhead
    /// through a clone of `bulkhead` (made only when a slot is taken). For code generic over
    /// how the bulkhead is held; [`Bulkhead::try_acquire_owned`] is this with a `Bulkhead`.
    ///
    /// ```
    /// use std::sync::LazyLock;
    /// use std::time::Duration;
    /// use tollgate::policy::{Bulkhead, BulkheadGuard};
    ///
    /// static UPLOADS: LazyLock<Bulkhead> = LazyLock::new(|| Bulkhead::new(1, Duration::ZERO));
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bulkhead: &'static Bulkhead = &UPLOADS;
    /// let slot = BulkheadGuard::try_acquire(&bulkhead).unwrap();
    /// assert!(BulkheadGuard::try_acquire(&bulkhead).is_err());
    /// tokio::spawn(async move { drop(slot) }).await.unwrap();
    /// assert_eq!(UPLOADS.available(), 1);
    /// # }
    /// ```
    #[inline]
    pub fn try_acquire(bulkhead: &R) -> Result<Self, BulkheadFull>
    where
        R: Clone,
    {
        let slots = &bulkhead.borrow().slots;
        if !slots.try_take() {
            return Err(bulkhead.borrow().refusal());
        }
        // Should the handle's `clone` panic, the slot just taken is given back.
        let undo = GiveBack(slots);
        let bulkhead = bulkhead.clone();
        std::mem::forget(undo);
        Ok(BulkheadGuard { bulkhead })
    }

    /// Like [`try_acquire`](Self::try_acquire), but the guard holds the bulkhead through
    /// `bulkhead` itself rather than a clone of it: for a holder that owns a handle and can
    /// give it to the slot (a tower service between `poll_ready` and `call`), taking a free slot
    /// touches no reference count. Without a free slot, `bulkhead` comes back with the refusal.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate::policy::{Bulkhead, BulkheadGuard};
    ///
    /// let bulkhead = Bulkhead::new(1, Duration::ZERO);
    /// let slot = BulkheadGuard::try_hold(bulkhead.clone()).unwrap();
    /// let (again, full) = BulkheadGuard::try_hold(bulkhead.clone()).unwrap_err();
    /// assert_eq!((full.max_concurrent(), again.available()), (1, 0));
    /// drop(slot);
    /// assert_eq!(bulkhead.available(), 1);
    /// ```
    #[inline]
    pub fn try_hold(bulkhead: R) -> Result<Self, (R, BulkheadFull)> {
        if bulkhead.borrow().slots.try_take() {
            Ok(BulkheadGuard { bulkhead })
        } else {
            let full = bulkhead.borrow().refusal();
            Err((bulkhead, full))
        }
    }

    /// The handle this slot holds its bulkhead through.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate::policy::{Bulkhead, BulkheadGuard};
    ///
    /// let bulkhead = Bulkhead::new(2, Duration::ZERO);
    /// let slot = BulkheadGuard::try_acquire(&&bulkhead).unwrap();
    /// assert!(std::ptr::eq(*slot.handle(), &bulkhead));
    /// assert_eq!(slot.handle().available(), 1);
    /// ```
    #[inline]
    pub fn handle(&self) -> &R {
        &self.bulkhead
    }

    /// Takes a slot, waiting at most the bulkhead's `max_wait`, holding the bulkhead through
    /// `bulkhead`. The slot is freed when the guard drops, also when the caller is cancelled.
    pub async fn acquire(bulkhead: R) -> Result<Self, BulkheadFull> {
        let taken = {
            let held = bulkhead.borrow();
            held.slots.try_take() || (!held.slots.max_wait.is_zero() && held.wait().await)
        };
        if taken {
            Ok(BulkheadGuard { bulkhead })
        } else {
            Err(bulkhead.borrow().refusal())
        }
    }

    /// The same slot, now held through `handle` (e.g. a slot taken through a `Bulkhead` clone
    /// moved to a guard over a `&'static Bulkhead`): no slot is given back or taken, and no
    /// waiter is woken unless another holder freed a slot meanwhile. `Err(self)`, unchanged,
    /// when `handle` leads to another bulkhead.
    pub fn rehold<R2: Borrow<Bulkhead>>(self, handle: R2) -> Result<BulkheadGuard<R2>, Self> {
        let slots = &handle.borrow().slots;
        if !Arc::ptr_eq(&self.bulkhead.borrow().slots, slots) {
            return Err(self);
        }
        // Counted twice for a moment (which only ever turns callers away, never admits one),
        // then `self` gives back its count; a give-back that frees nothing wakes nobody.
        slots.in_use.fetch_add(1, Ordering::SeqCst);
        drop(self);
        Ok(BulkheadGuard { bulkhead: handle })
    }
}

impl<R: Borrow<Bulkhead>> Drop for BulkheadGuard<R> {
    #[inline]
    fn drop(&mut self) {
        self.bulkhead.borrow().slots.give_back();
    }
}

impl<R: Borrow<Bulkhead>> fmt::Debug for BulkheadGuard<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadGuard").finish_non_exhaustive()
    }
}

/// Gives a slot back when dropped: a slot taken just before a call into user code that may
/// panic.
struct GiveBack<'a>(&'a Slots);

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(waiters)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Bulkhead {
    /// A bulkhead of `max_concurrent` slots (at least 1) and a wait of at most `max_wait`
    /// (`Duration::ZERO`: reject at once when full).
    pub fn new(max_concurrent: usize, max_wait: Duration) -> Self {
        Bulkhead {
            slots: Arc::new(Slots {
                max: NonZeroUsize::new(max_concurrent).unwrap_or(NonZeroUsize::MIN),
                max_wait,
                in_use: AtomicUsize::new(0),
                waiters: AtomicUsize::new(0),
                freed: Notify::new(),
            }),
        }
    }

    /// The limit on concurrent calls.
    pub fn max_concurrent(&self) -> usize {
        self.slots.max.get()
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.slots
            .max
            .get()
            .saturating_sub(self.slots.in_use.load(Ordering::SeqCst))
    }

    /// How long a caller waits for a slot before it is turned away.
    pub fn max_wait(&self) -> Duration {
        self.slots.max_wait
    }

    /// Takes a slot, waiting at most `max_wait`. The slot is freed when the guard drops, also
    /// when the caller is cancelled.
    pub async fn acquire(&self) -> Result<BulkheadSlot<'_>, BulkheadFull> {
        BulkheadGuard::acquire(self).await
    }

    /// Like [`acquire`](Self::acquire), but the slot holds a clone of the bulkhead and can be
    /// moved into a task.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate::policy::Bulkhead;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let bulkhead = Bulkhead::new(1, Duration::ZERO);
    /// let slot = bulkhead.acquire_owned().await.unwrap();
    /// let task = tokio::spawn(async move { drop(slot) });
    /// task.await.unwrap();
    /// assert_eq!(bulkhead.available(), 1);
    /// # }
    /// ```
    pub async fn acquire_owned(&self) -> Result<OwnedBulkheadSlot, BulkheadFull> {
        BulkheadGuard::acquire(self.clone()).await
    }

    /// Takes a free slot now, without waiting (whatever `max_wait` says): one atomic
    /// read-modify-write. For callers that cannot await, such as a tower service's `call`.
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedBulkheadSlot, BulkheadFull> {
        BulkheadGuard::try_acquire(self)
    }

    /// What a caller this bulkhead turns away gets: [`BulkheadFull`], with this bulkhead's
    /// limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate::policy::Bulkhead;
    ///
    /// let bulkhead = Bulkhead::new(2, Duration::ZERO);
    /// let (_a, _b) = (bulkhead.try_acquire_owned(), bulkhead.try_acquire_owned());
    /// assert_eq!(bulkhead.try_acquire_owned().unwrap_err(), bulkhead.refusal());
    /// assert_eq!(bulkhead.refusal().max_concurrent(), 2);
    /// ```
    pub fn refusal(&self) -> BulkheadFull {
        BulkheadFull {
            max_concurrent: self.slots.max,
        }
    }

    /// Waits for a freed slot until the deadline; `true` once one is taken.
    async fn wait(&self) -> bool {
        let _waiting = Waiting::new(&self.slots.waiters);
        // `None`: a wait too long to have a deadline (`Duration::MAX`, say) lasts until a slot
        // is freed.
        let deadline = Instant::now().checked_add(self.slots.max_wait);
        loop {
            let mut freed = pin!(self.slots.freed.notified());
            freed.as_mut().enable();
            if self.slots.try_take() {
                return true;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        return self.slots.try_take();
                    }
                }
                None => freed.await,
            }
        }
    }
}
