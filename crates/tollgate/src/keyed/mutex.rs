//! [`Mutex`]: one async mutex per key, whose state lives only while the key is locked or awaited.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::sync::slots::SlotMap;

type Slots<K> = SlotMap<K, AsyncMutex<()>>;

/// A per-key async mutex: see the [module](super) docs. Cheap to clone: clones share the locks.
pub struct Mutex<K> {
    slots: Arc<Slots<K>>,
}

/// Holds the lock of one key; dropping it unlocks (and frees the key's state if nobody waits).
#[must_use = "the key is unlocked as soon as the guard is dropped"]
pub struct Guard<K: Hash + Eq> {
    // Field order matters: the lock is released before the ticket gives back its use.
    _lock: OwnedMutexGuard<()>,
    ticket: Ticket<K>,
}

/// Holds the locks of several keys, taken in ascending key order; dropping it unlocks all.
#[must_use = "the keys are unlocked as soon as the guard is dropped"]
pub struct ManyGuard<K: Hash + Eq> {
    guards: Vec<Guard<K>>,
}

/// One use of a key's slot (waiting or holding); the last one removes the slot.
struct Ticket<K: Hash + Eq> {
    slots: Arc<Slots<K>>,
    key: K,
    slot: Arc<AsyncMutex<()>>,
}

impl<K: Hash + Eq> Drop for Ticket<K> {
    fn drop(&mut self) {
        self.slots.release(&self.key, &self.slot);
    }
}

impl<K: Hash + Eq + Clone> Mutex<K> {
    /// A mutex with no key locked.
    pub fn new() -> Self {
        Mutex {
            slots: Arc::new(SlotMap::new()),
        }
    }

    fn ticket(&self, key: K) -> Ticket<K> {
        let (slot, _) = self.slots.acquire(key.clone(), || AsyncMutex::new(()));
        Ticket {
            slots: Arc::clone(&self.slots),
            key,
            slot,
        }
    }

    /// Locks `key`, waiting (fairly, in arrival order) while another task holds it.
    ///
    /// Cancel-safe: a waiter that is dropped gives back its use of the key's state.
    pub async fn lock(&self, key: K) -> Guard<K> {
        let ticket = self.ticket(key);
        let lock = Arc::clone(&ticket.slot).lock_owned().await;
        Guard {
            _lock: lock,
            ticket,
        }
    }

    /// Locks `key` if nobody holds it.
    pub fn try_lock(&self, key: K) -> Option<Guard<K>> {
        let ticket = self.ticket(key);
        let lock = Arc::clone(&ticket.slot).try_lock_owned().ok()?;
        Some(Guard {
            _lock: lock,
            ticket,
        })
    }

    /// Locks every key of `keys` (duplicates once), always in ascending order, so two callers
    /// locking overlapping sets can never deadlock.
    pub async fn lock_many(&self, keys: impl IntoIterator<Item = K>) -> ManyGuard<K>
    where
        K: Ord,
    {
        let mut keys: Vec<K> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut guards = Vec::with_capacity(keys.len());
        for key in keys {
            guards.push(self.lock(key).await);
        }
        ManyGuard { guards }
    }

    /// Whether no task holds `key`, waits for it or is asking for it right now.
    pub fn is_free(&self, key: &K) -> bool {
        !self.slots.contains(key)
    }

    /// Number of keys currently locked or waited for (0 when idle: no state is left behind).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// `true` when no key is locked or waited for.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl<K: Hash + Eq> Guard<K> {
    /// Whether another task waits for this key (or is just asking for it).
    pub fn has_waiters(&self) -> bool {
        self.ticket.slots.users(&self.ticket.key, &self.ticket.slot) > 1
    }

    /// The locked key.
    pub fn key(&self) -> &K {
        &self.ticket.key
    }
}

impl<K: Hash + Eq> ManyGuard<K> {
    /// The locked keys, in the order they were locked.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.guards.iter().map(Guard::key)
    }
}

impl<K: Hash + Eq + Clone> Default for Mutex<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> Clone for Mutex<K> {
    fn clone(&self) -> Self {
        Mutex {
            slots: Arc::clone(&self.slots),
        }
    }
}

impl<K: Hash + Eq> fmt::Debug for Mutex<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("keys", &self.slots.len())
            .finish()
    }
}

impl<K: Hash + Eq + fmt::Debug> fmt::Debug for Guard<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("key", self.key()).finish()
    }
}

impl<K: Hash + Eq + fmt::Debug> fmt::Debug for ManyGuard<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}
