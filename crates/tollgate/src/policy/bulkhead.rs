//! Bulkhead: a bound on concurrent calls, with a bounded wait for a slot.
//!
//! Taking and returning a free slot is one atomic read-modify-write each; only callers that must
//! wait touch the notification queue. A slot is a guard, borrowed ([`BulkheadSlot`]) or owning an
//! `Arc` of the bulkhead ([`OwnedBulkheadSlot`], for spawned tasks and named futures).

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::error::BulkheadFull;

#[derive(Debug)]
struct Slots {
    max: usize,
    in_use: AtomicUsize,
    waiters: AtomicUsize,
    freed: Notify,
}

impl Slots {
    fn try_take(&self) -> bool {
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.in_use.fetch_sub(1, Ordering::SeqCst);
        // Pairs with the waiter's increment before its re-check: either it sees the slot, or
        // we see it waiting and wake one waiter.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.freed.notify_one();
        }
    }
}

/// At most `max_concurrent` calls at once; a caller waits at most `max_wait` for a slot, then
/// gets [`BulkheadFull`]. Clones share the same slots.
#[derive(Clone, Debug)]
pub struct Bulkhead {
    slots: Arc<Slots>,
    max_wait: Duration,
}

/// A taken bulkhead slot that borrows its bulkhead; dropping it frees the slot.
#[must_use = "the slot is freed as soon as this guard is dropped"]
pub struct BulkheadSlot<'a> {
    slots: &'a Slots,
}

impl Drop for BulkheadSlot<'_> {
    fn drop(&mut self) {
        self.slots.give_back();
    }
}

impl fmt::Debug for BulkheadSlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadSlot").finish_non_exhaustive()
    }
}

/// A taken bulkhead slot that owns an `Arc` of the bulkhead's slots, so it can be moved into a
/// spawned task or kept in a `'static` future; dropping it frees the slot.
#[must_use = "the slot is freed as soon as this guard is dropped"]
pub struct OwnedBulkheadSlot {
    slots: Arc<Slots>,
}

impl Drop for OwnedBulkheadSlot {
    fn drop(&mut self) {
        self.slots.give_back();
    }
}

impl fmt::Debug for OwnedBulkheadSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedBulkheadSlot").finish_non_exhaustive()
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
                max: max_concurrent.max(1),
                in_use: AtomicUsize::new(0),
                waiters: AtomicUsize::new(0),
                freed: Notify::new(),
            }),
            max_wait,
        }
    }

    /// The limit on concurrent calls.
    pub fn max_concurrent(&self) -> usize {
        self.slots.max
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.slots
            .max
            .saturating_sub(self.slots.in_use.load(Ordering::SeqCst))
    }

    /// How long a caller waits for a slot before it is turned away.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Takes a slot, waiting at most `max_wait`. The slot is freed when the guard drops, also
    /// when the caller is cancelled.
    pub async fn acquire(&self) -> Result<BulkheadSlot<'_>, BulkheadFull> {
        if self.slots.try_take() || (!self.max_wait.is_zero() && self.wait().await) {
            Ok(BulkheadSlot { slots: &self.slots })
        } else {
            Err(self.full())
        }
    }

    /// Like [`acquire`](Self::acquire), but the slot owns an `Arc` of the bulkhead's slots and
    /// can be moved into a task.
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
        match self.try_acquire_owned() {
            Err(_) if !self.max_wait.is_zero() && self.wait().await => Ok(self.owned()),
            taken => taken,
        }
    }

    /// Takes a free slot now, without waiting (whatever `max_wait` says): one atomic
    /// read-modify-write. For callers that cannot await, such as a tower service's `call`.
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedBulkheadSlot, BulkheadFull> {
        if self.slots.try_take() {
            Ok(self.owned())
        } else {
            Err(self.full())
        }
    }

    fn owned(&self) -> OwnedBulkheadSlot {
        OwnedBulkheadSlot {
            slots: Arc::clone(&self.slots),
        }
    }

    fn full(&self) -> BulkheadFull {
        BulkheadFull {
            max_concurrent: self.slots.max,
        }
    }

    /// Waits for a freed slot until the deadline; `true` once one is taken.
    async fn wait(&self) -> bool {
        let _waiting = Waiting::new(&self.slots.waiters);
        let deadline = Instant::now() + self.max_wait;
        loop {
            let mut freed = pin!(self.slots.freed.notified());
            freed.as_mut().enable();
            if self.slots.try_take() {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.slots.try_take();
            }
        }
    }
}
