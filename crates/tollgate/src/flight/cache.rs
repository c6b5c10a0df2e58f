//! The optional short-lived result cache: finished results served again for a per-outcome TTL.

use std::collections::HashMap;
use std::hash::Hash;

use tokio::time::Instant;

use super::config::CachePolicy;
use super::error::Error;
use crate::clock::Clock;
use crate::sync::slots::Sharded;

type Shared<T, E> = Result<T, Error<E>>;

struct Entry<T, E> {
    result: Shared<T, E>,
    expires_at: Instant,
}

struct Shard<K, T, E> {
    entries: HashMap<K, Entry<T, E>>,
    /// Size at which expired entries are swept out; doubles with the live size, so sweeping
    /// costs O(1) amortised per insertion.
    sweep_at: usize,
}

const MIN_SWEEP: usize = 16;

pub(crate) struct ResultCache<K, T, E> {
    shards: Sharded<Shard<K, T, E>>,
    policy: CachePolicy,
    clock: Clock,
}

impl<K: Hash + Eq, T: Clone, E: Clone> ResultCache<K, T, E> {
    pub(crate) fn new(policy: CachePolicy, clock: Clock) -> Self {
        let shards = Sharded::new(Sharded::<()>::default_count(), || Shard {
            entries: HashMap::new(),
            sweep_at: MIN_SWEEP,
        });
        ResultCache {
            shards,
            policy,
            clock,
        }
    }

    /// The cached result of `key`, if one is still fresh; an expired one is dropped.
    pub(crate) fn get(&self, key: &K) -> Option<Shared<T, E>> {
        let mut shard = self.shards.lock(key);
        let entry = shard.entries.get(key)?;
        if entry.expires_at > self.clock.now() {
            return Some(entry.result.clone());
        }
        shard.entries.remove(key);
        None
    }

    /// Stores `result` for its outcome's TTL; panics, aborts and outcomes without a TTL are
    /// not stored.
    pub(crate) fn put(&self, key: K, result: &Shared<T, E>) {
        let ttl = match result {
            Ok(_) => self.policy.success_ttl,
            Err(Error::Failed(_)) => self.policy.failure_ttl,
            Err(_) => None,
        };
        let Some(ttl) = ttl else { return };
        let now = self.clock.now();
        let mut shard = self.shards.lock(&key);
        if shard.entries.len() >= shard.sweep_at {
            shard.entries.retain(|_, e| e.expires_at > now);
            shard.sweep_at = (shard.entries.len() * 2).max(MIN_SWEEP);
        }
        let entry = Entry {
            result: result.clone(),
            expires_at: now + ttl,
        };
        shard.entries.insert(key, entry);
    }

    /// Drops every expired entry; returns how many remain.
    pub(crate) fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        self.shards.fold(0, |n, shard| {
            shard.entries.retain(|_, e| e.expires_at > now);
            n + shard.entries.len()
        })
    }
}
