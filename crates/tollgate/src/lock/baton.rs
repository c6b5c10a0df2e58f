//! [`Batons`]: keys a releasing holder hands over, in one store step, to the next waiter of
//! the same process.
//!
//! The holder leaves the baton *before* the store has answered (a [`PendingBaton`]) and lets
//! the waiter in at once, so the waiter's wake-up overlaps the hand-over's round trip instead
//! of following it; the waiter holds the key only once the store's answer arrives. The holder
//! never waits for the waiter: a waiter that is slow to run, or never runs again, delays
//! nobody but itself. A filled baton that no task of the process will take (the holder counted
//! a caller that then gave up or did not wait) is withdrawn and its key released on the store,
//! by the holder as it fills it or by the last acquisition of the key as it ends.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::store::{Key, Token};

/// A key handed over to the next local waiter: held on the store with `token` for `lease`
/// from `sent` (when the hand-over was sent).
#[derive(Clone, Copy, Debug)]
pub(super) struct Baton {
    pub(super) token: Token,
    pub(super) lease: Duration,
    pub(super) sent: Instant,
}

impl Baton {
    /// Whether a waiter asking for `lease` can hold the key with it: the same lease, and at
    /// least a tenth of it left (the margin a guard keeps before it gives a lease up).
    pub(super) fn usable_for(&self, lease: Duration) -> bool {
        self.lease == lease && Instant::now() + lease / 10 < self.sent + lease
    }
}

/// A baton on its way: the store's answer to a hand-over still in flight. It yields nothing
/// when the hand-over did not grant the key (the holder had lost it, the store failed, or the
/// releasing call was dropped): the waiter then acquires on its own.
pub(super) type PendingBaton = oneshot::Receiver<Baton>;

/// The batons left for the waiters of one [`Locks`](super::Locks), one per key at most.
#[derive(Debug, Default)]
pub(super) struct Batons(Mutex<HashMap<Key, PendingBaton>>);

impl Batons {
    /// Leaves a baton for the next task of this process that gets its turn at `key`, to be
    /// filled through the returned sender once the store answered.
    pub(super) fn leave(&self, key: Key) -> oneshot::Sender<Baton> {
        let (fill, pending) = oneshot::channel();
        self.put_back(key, pending);
        fill
    }

    /// Puts a baton back for the next task that gets its turn at `key`.
    pub(super) fn put_back(&self, key: Key, pending: PendingBaton) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, pending);
    }

    /// Fills the baton left at `key` through `fill` with `baton`. When nobody of this process
    /// holds, waits for or asks for `key` any more (`free`), nobody will take it: it is
    /// withdrawn and its token returned, for the caller to release on the store. Also returned
    /// when its receiver is gone (the waiter gave up).
    ///
    /// Together with [`Batons::reap`], run by every acquisition as it ends, this leaves no
    /// filled baton behind: each side changes its own state (the fill here, the end of an
    /// acquisition there) before it looks at the other's under this map's lock.
    pub(super) fn fill(
        &self,
        key: &Key,
        fill: oneshot::Sender<Baton>,
        baton: Baton,
        free: impl FnOnce() -> bool,
    ) -> Option<Token> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(unclaimed) = fill.send(baton) {
            return Some(unclaimed.token);
        }
        Self::withdraw(&mut map, key, free)
    }

    /// Withdraws a filled baton left at `key` when nobody of this process holds, waits for or
    /// asks for `key` (`free`): its token, for the caller to release on the store.
    pub(super) fn reap(&self, key: &Key, free: impl FnOnce() -> bool) -> Option<Token> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Self::withdraw(&mut map, key, free)
    }

    fn withdraw(
        map: &mut HashMap<Key, PendingBaton>,
        key: &Key,
        free: impl FnOnce() -> bool,
    ) -> Option<Token> {
        if !map.contains_key(key) || !free() {
            return None;
        }
        let mut pending = map.remove(key)?;
        match pending.try_recv() {
            Ok(baton) => Some(baton.token),
            // Not filled yet: its holder fills it later and withdraws it then.
            Err(oneshot::error::TryRecvError::Empty) => {
                map.insert(key.clone(), pending);
                None
            }
            Err(oneshot::error::TryRecvError::Closed) => None,
        }
    }

    /// The baton left at `key`, if any.
    pub(super) fn take(&self, key: &Key) -> Option<PendingBaton> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }
}
