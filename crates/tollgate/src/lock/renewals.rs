//! [`Renewals`]: one task renews the leases of every live guard of a [`Locks`](super::Locks).
//!
//! A guard registers its lease when it is granted and cancels it when it is released or
//! dropped: a lock on a map, no task spawned or aborted per acquisition (which, measured,
//! was half the cost of an uncontended acquire + release on a runtime worker: each spawn or
//! abort may wake the other, parked worker). The driver task sleeps until the earliest
//! renewal due and is woken only when a lease registers with an earlier one (or when it is
//! idle); each renewal runs in a task of its own, so a slow store never delays another
//! lease's renewal.
//!
//! The driver and the renewals run on the runtime of the first guard (a driver whose runtime
//! is gone is started again by the next guard): use a `Locks` within one runtime.
//!
//! The rules are those of [`store::lease::keep`](crate::store::lease::keep): renew every
//! [`LeaseTiming::renew_every`] from the instant the lease was granted; retry a failed
//! renewal after a quarter of that; a lease is lost — its signal fires once — when the store
//! rejects a renewal ([`LostReason::Fenced`]) or when no renewal succeeded within
//! [`LeaseTiming::lease`] of the last successful one's sending ([`LostReason::Expired`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::store::LockStore;
use crate::store::lease::{self, LeaseLost, LeaseTiming, LostReason};
use crate::store::{Key, Settle, StoreError, Token};

/// The registration of one guard's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct RenewalId(u64);

/// The renewal driver of one [`Locks`](super::Locks); clones share it.
pub(super) struct Renewals<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for Renewals<S> {
    fn clone(&self) -> Self {
        Renewals {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<S> {
    store: Arc<S>,
    state: Mutex<State>,
    /// Wakes the driver: a lease is due earlier than it planned, or the locks are gone.
    wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    leases: HashMap<RenewalId, Entry>,
    /// When each lease not being renewed right now next needs the driver.
    due: BTreeSet<(Instant, RenewalId)>,
    /// When the driver will look next (`None`: not before it is woken).
    driver_wakes_at: Option<Instant>,
    driver: Option<JoinHandle<()>>,
}

struct Entry {
    key: Key,
    token: Token,
    /// The lease asked of the store at each renewal.
    lease: Duration,
    timing: LeaseTiming,
    /// The lease may have ended on the store after this instant.
    held_until: Instant,
    /// The next renewal.
    next: Instant,
    /// The instant the entry is in `due` at: its next renewal or the end of its lease,
    /// whichever is first — or, while a renewal is in flight, the end of its lease, so the
    /// loss is noticed even if that renewal never answers.
    due: Instant,
    in_flight: bool,
    signal: watch::Sender<Option<LostReason>>,
}

impl Entry {
    fn lose(&self, reason: LostReason) {
        lease::lose(&format_args!("lock {}", self.key), &self.signal, reason);
        metrics::counter!("tollgate_lock_lost_total",
            "namespace" => self.key.namespace().to_owned(), "reason" => reason.label())
        .increment(1);
    }
}

impl<S: LockStore> Renewals<S> {
    /// The driver of leases kept in `store` (started on the first registration).
    pub(super) fn new(store: Arc<S>) -> Self {
        Renewals {
            shared: Arc::new(Shared {
                store,
                state: Mutex::new(State::default()),
                wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// Renews `token`'s lease of `key` (granted for `lease` by a request sent at `sent`)
    /// until [`Renewals::cancel`]; the signal fires if it is lost. Must be called within a
    /// tokio runtime (the driver runs on it).
    pub(super) fn register(
        &self,
        key: Key,
        token: Token,
        lease: Duration,
        sent: Instant,
    ) -> (RenewalId, LeaseLost) {
        // The holder gives up its lease a tenth of it before the store's end (from the instant
        // the last successful request was sent): timers fire late and tasks are scheduled late,
        // and the lost-lease signal must fire while the lease is still live on the store.
        let timing = LeaseTiming::new(lease - lease / 10, lease / 3);
        let (signal, lost) = lease::signal();
        let now = Instant::now();
        let mut state = self.shared.lock();
        // Started (or restarted, if the runtime it ran on is gone) before the lease is
        // entered: outside a runtime this panics as `tokio::spawn` does, leaving nothing behind.
        let restart = state.driver.as_ref().is_none_or(JoinHandle::is_finished);
        if restart {
            let (shared, wake) = (Arc::downgrade(&self.shared), Arc::clone(&self.shared.wake));
            state.driver = Some(tokio::spawn(drive(shared, wake)));
            state.driver_wakes_at = None;
        }
        let id = RenewalId(state.next_id);
        state.next_id += 1;
        let entry = Entry {
            key,
            token,
            lease,
            timing,
            held_until: sent + timing.lease(),
            next: now + timing.renew_every(),
            due: now,
            in_flight: false,
            signal,
        };
        state.leases.insert(id, entry);
        if state.schedule(id) {
            self.shared.wake.notify_one();
        }
        (id, lost)
    }

    /// Stops renewing a lease (its guard released the key or was dropped). A renewal in
    /// flight finishes on the store but changes nothing here.
    pub(super) fn cancel(&self, id: RenewalId) {
        let mut state = self.shared.lock();
        if let Some(entry) = state.leases.remove(&id) {
            state.due.remove(&(entry.due, id));
        }
    }
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> Drop for Shared<S> {
    fn drop(&mut self) {
        // The last `Locks` and guard are gone: the driver sees it and ends.
        self.wake.notify_one();
    }
}

impl State {
    /// Puts `id` in `due` at its next renewal or the end of its lease, whichever is first
    /// (only the end while a renewal is in flight); whether the driver must be woken to see it
    /// in time.
    fn schedule(&mut self, id: RenewalId) -> bool {
        let Some(entry) = self.leases.get_mut(&id) else {
            return false;
        };
        self.due.remove(&(entry.due, id));
        entry.due = if entry.in_flight {
            entry.held_until
        } else {
            entry.next.min(entry.held_until)
        };
        self.due.insert((entry.due, id));
        self.driver_wakes_at.is_none_or(|wakes| entry.due < wakes)
    }
}

impl<S: LockStore> Shared<S> {
    /// Starts the renewals due by `now` and gives up the leases that ended; when the driver
    /// must look next.
    fn tick(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        while let Some(&(at, id)) = state.due.first() {
            if at > now {
                break;
            }
            let Some(entry) = state.leases.get_mut(&id) else {
                state.due.remove(&(at, id));
                continue;
            };
            if entry.held_until <= now {
                // No renewal was accepted in time (one may still be in flight: its answer,
                // if it ever comes, finds the lease gone).
                entry.lose(LostReason::Expired);
                state.leases.remove(&id);
                state.due.remove(&(at, id));
                continue;
            }
            entry.in_flight = true;
            let renewal = renew(Arc::downgrade(self), Arc::clone(&self.store), id, entry);
            tokio::spawn(renewal);
            state.schedule(id);
        }
        state.driver_wakes_at = state.due.first().map(|&(at, _)| at);
        state.driver_wakes_at
    }

    /// Applies the store's answer to the renewal of `id` sent at `sent`.
    fn renewed(&self, id: RenewalId, sent: Instant, answer: Option<Result<Settle, StoreError>>) {
        let mut state = self.lock();
        let Some(entry) = state.leases.get_mut(&id) else {
            return; // released or given up meanwhile
        };
        entry.in_flight = false;
        let lost = match answer {
            Some(Ok(Settle::Accepted)) => {
                entry.held_until = sent + entry.timing.lease();
                entry.next = sent + entry.timing.renew_every();
                None
            }
            Some(Ok(Settle::Fenced)) => Some(LostReason::Fenced),
            Some(Err(e)) => {
                tracing::warn!(lock = %entry.key, error = %e, "lease: renewal failed");
                let retry = (entry.timing.renew_every() / 4).max(Duration::from_millis(1));
                entry.next = Instant::now() + retry;
                None
            }
            None => Some(LostReason::Expired),
        };
        if let Some(reason) = lost {
            entry.lose(reason);
            let due = entry.due;
            state.leases.remove(&id);
            state.due.remove(&(due, id));
            return;
        }
        if state.schedule(id) {
            self.wake.notify_one();
        }
    }
}

/// One renewal of `entry`'s lease, sent when the task first runs and bounded by the end of
/// the lease; `None` when the store did not answer in time (or the task ran too late to ask).
fn renew<S: LockStore>(
    shared: Weak<Shared<S>>,
    store: Arc<S>,
    id: RenewalId,
    entry: &Entry,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (key, token, lease) = (entry.key.clone(), entry.token, entry.lease);
    let held_until = entry.held_until;
    async move {
        let sent = Instant::now();
        let answer = if sent >= held_until {
            None
        } else {
            tokio::time::timeout_at(held_until, store.renew(&key, token, lease))
                .await
                .ok()
        };
        if let Some(shared) = shared.upgrade() {
            shared.renewed(id, sent, answer);
        }
    }
}

/// The driver: sleeps until the earliest lease needs it (or it is woken), starts what is due,
/// and ends once its `Locks` and every guard are gone.
async fn drive<S: LockStore>(shared: Weak<Shared<S>>, wake: Arc<Notify>) {
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let next = strong.tick(Instant::now());
        drop(strong);
        match next {
            Some(at) => {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
