//! Per-key slots whose lifetime is exactly the time someone uses them.
//!
//! This is the bookkeeping shared by [`crate::flight`] (one in-flight call per key) and
//! [`crate::keyed::Mutex`] (one async mutex per key): a sharded map from key to an `Arc<V>` plus a
//! count of users. A slot is created by the first [`SlotMap::acquire`], shared by every later one,
//! and removed by the [`SlotMap::release`] that brings the count back to zero (or by
//! [`SlotMap::remove_hashed`]). Because the count and the map change under the same shard lock,
//! a caller can never obtain a slot that has already been removed: it either joins the live
//! slot or creates a fresh one. Locks are held only for a hash-map operation, never across an
//! `.await`, and keys in different shards never contend.
//!
//! The types use the primitives of [`crate::sync`], so `tests/loom_keyed.rs` and
//! `tests/loom_flight.rs` model-check this exact code (they reach it as `tollgate::keyed::slots`,
//! a door that exists only under `cfg(tollgate_loom)`).
// Visible outside the crate only under `cfg(tollgate_loom)`, for the loom models.
#![cfg_attr(not(tollgate_loom), allow(unreachable_pub))]

use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, PoisonError};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::{Mutex, MutexGuard};

/// A value split into independently locked shards, chosen by a key's hash.
pub struct Sharded<T> {
    shards: Box<[Mutex<T>]>,
    hasher: RandomState,
}

impl<T> Sharded<T> {
    /// A shard count suited to this machine: several per CPU, so distinct keys rarely share one.
    pub fn default_count() -> usize {
        let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cpus * 8).next_power_of_two().clamp(8, 256)
    }

    /// `count` shards (at least one), each made by `init`.
    pub fn new(count: usize, init: impl Fn() -> T) -> Self {
        Sharded {
            shards: (0..count.max(1)).map(|_| Mutex::new(init())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Locks the shard that owns `key`.
    pub fn lock<K: Hash + ?Sized>(&self, key: &K) -> MutexGuard<'_, T> {
        self.lock_hashed(self.hash(key))
    }

    /// The hash of `key` that chooses its shard (also usable inside the shard: the shard is
    /// chosen by its high half, hash tables index by the low bits).
    pub fn hash<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Locks the shard that owns the key of `hash` (from [`Sharded::hash`]).
    pub fn lock_hashed(&self, hash: u64) -> MutexGuard<'_, T> {
        // The modulo keeps the index in range; truncating the hash to usize is intended.
        #[allow(clippy::cast_possible_truncation)]
        let index = ((hash >> 32) as usize) % self.shards.len();
        lock(&self.shards[index])
    }

    /// Folds over every shard, locking one at a time.
    pub fn fold<A>(&self, init: A, mut f: impl FnMut(A, &mut T) -> A) -> A {
        self.shards
            .iter()
            .fold(init, |acc, shard| f(acc, &mut lock(shard)))
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.shards.len()
    }
}

// A panic while a shard is locked can only come from a user's Hash/Eq; the map itself is
// still consistent, so a poisoned lock is recovered rather than propagated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A sharded map of reference-counted per-key slots. Each operation hashes its key once: the
/// hash chooses the shard and finds the slot in it.
pub struct SlotMap<K, V> {
    shards: Sharded<HashTable<Slot<K, V>>>,
}

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: Arc<V>,
    users: usize,
}

impl<K: Hash + Eq, V> SlotMap<K, V> {
    /// An empty map with a shard count suited to this machine.
    pub fn new() -> Self {
        Self::with_shards(Sharded::<()>::default_count())
    }

    /// An empty map with `shards` shards (at least one).
    pub fn with_shards(shards: usize) -> Self {
        SlotMap {
            shards: Sharded::new(shards, HashTable::new),
        }
    }

    /// The key's hash and its locked shard.
    fn shard(&self, key: &K) -> (u64, MutexGuard<'_, HashTable<Slot<K, V>>>) {
        let hash = self.shards.hash(key);
        (hash, self.shards.lock_hashed(hash))
    }

    /// Joins the slot of `key` as one more user, or creates it with `make` if there is none.
    ///
    /// Returns the slot and `true` when this call created it.
    pub fn acquire(&self, key: K, make: impl FnOnce() -> V) -> (Arc<V>, bool) {
        self.acquire_with(key, |_, _| make())
    }

    /// [`SlotMap::acquire`], with `make` given the key and its hash (the map keeps `key`
    /// itself; a value can keep the hash for [`SlotMap::release_hashed`] and
    /// [`SlotMap::remove_hashed`], which then need no key).
    pub fn acquire_with(&self, key: K, make: impl FnOnce(&K, u64) -> V) -> (Arc<V>, bool) {
        let (hash, mut shard) = self.shard(&key);
        match shard.entry(hash, |slot| slot.key == key, |slot| slot.hash) {
            Entry::Occupied(mut found) => {
                let slot = found.get_mut();
                slot.users += 1;
                (Arc::clone(&slot.value), false)
            }
            Entry::Vacant(vacant) => {
                let value = Arc::new(make(&key, hash));
                vacant.insert(Slot {
                    hash,
                    key,
                    value: Arc::clone(&value),
                    users: 1,
                });
                (value, true)
            }
        }
    }

    /// How many users the slot of `key` has, if it is still `value` (0 otherwise).
    pub fn users(&self, key: &K, value: &Arc<V>) -> usize {
        let (hash, shard) = self.shard(key);
        match shard.find(hash, |slot| slot.key == *key) {
            Some(slot) if Arc::ptr_eq(&slot.value, value) => slot.users,
            _ => 0,
        }
    }

    /// Gives back one use of `value`; removes the slot when this was the last user.
    ///
    /// Returns `true` when this call removed the slot. A slot that was already removed (or
    /// replaced by a newer one for the same key) is left alone and `false` is returned.
    pub fn release(&self, key: &K, value: &Arc<V>) -> bool {
        // The slot is identified by its value; the key only gives the hash that finds it.
        self.release_hashed(self.shards.hash(key), value)
    }

    /// [`SlotMap::release`] of the slot whose key has `hash` (as given to
    /// [`SlotMap::acquire_with`]'s `make`): the slot is found by its value, no key needed.
    pub fn release_hashed(&self, hash: u64, value: &Arc<V>) -> bool {
        let mut shard = self.shards.lock_hashed(hash);
        let Ok(mut found) = shard.find_entry(hash, |slot| Arc::ptr_eq(&slot.value, value)) else {
            return false;
        };
        let slot = found.get_mut();
        slot.users = slot.users.saturating_sub(1);
        if slot.users > 0 {
            return false;
        }
        found.remove();
        true
    }

    /// Removes the slot whose key has `hash` (as given to [`SlotMap::acquire_with`]'s `make`),
    /// found by its value, whatever its user count; `true` when this call removed it.
    pub fn remove_hashed(&self, hash: u64, value: &Arc<V>) -> bool {
        let mut shard = self.shards.lock_hashed(hash);
        match shard.find_entry(hash, |slot| Arc::ptr_eq(&slot.value, value)) {
            Ok(found) => {
                found.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `key` has a live slot (someone uses it).
    pub fn contains(&self, key: &K) -> bool {
        let (hash, shard) = self.shard(key);
        shard.find(hash, |slot| slot.key == *key).is_some()
    }

    /// Number of live slots (exact when no call is running concurrently).
    pub fn len(&self) -> usize {
        self.shards.fold(0, |n, shard| n + shard.len())
    }

    /// `true` when no slot is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> fmt::Debug for Sharded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sharded")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V> Default for SlotMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, V> fmt::Debug for SlotMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotMap")
            .field("shards", &self.shards.count())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(all(test, not(tollgate_loom)))]
mod tests {
    use super::*;

    #[test]
    fn last_release_removes_and_stale_handles_are_ignored() {
        let map: SlotMap<&str, u32> = SlotMap::with_shards(2);
        let (a, created) = map.acquire("k", || 1);
        assert!(created);
        let (b, created) = map.acquire("k", || 2);
        assert!(!created);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!map.release(&"k", &a));
        assert!(map.release(&"k", &b));
        assert!(map.is_empty());
        let (c, created) = map.acquire("k", || 3);
        assert!(created && *c == 3);
        assert!(
            !map.release(&"k", &a),
            "a stale slot must not release the new one"
        );
        assert!(map.release(&"k", &c));
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn hashed_release_and_remove_find_the_slot_by_its_value() {
        let map: SlotMap<String, u32> = SlotMap::with_shards(4);
        let mut hash = None;
        let (a, created) = map.acquire_with("k".to_owned(), |key, h| {
            hash = Some(h);
            u32::try_from(key.len()).unwrap_or(0)
        });
        let hash = hash.unwrap_or_default();
        assert!(created && *a == 1);
        let (b, created) = map.acquire("k".to_owned(), || 9);
        assert!(!created && Arc::ptr_eq(&a, &b));
        // Other keys in the same table: the value, not the hash alone, picks the slot.
        for i in 0..100 {
            map.acquire(format!("other-{i}"), || i);
        }
        assert!(!map.release_hashed(hash, &a), "one user left");
        assert!(map.release_hashed(hash, &b), "the last user removes it");
        assert!(!map.contains(&"k".to_owned()));
        let (c, _) = map.acquire_with("k".to_owned(), |_, _| 3);
        assert!(
            !map.remove_hashed(hash, &a),
            "a stale slot must not remove the new one"
        );
        assert!(!map.release_hashed(hash, &a));
        assert!(map.remove_hashed(hash, &c));
        assert_eq!(map.len(), 100);
    }
}
