//! The cached resources: a lock-free map of entries, and every way an entry leaves it.
//!
//! An entry leaves the map through [`Inner::take`] only, so exactly one caller wins each
//! removal, and that caller closes the resource in a spawned task that no caller owns: a
//! removal that has started always ends with `close` (no zombie), even if its caller is
//! cancelled.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::config::{Builder, WhenFull};
use super::{Error, Factory, Resource};
use crate::clock::Clock;

/// One cached resource.
pub(crate) struct Entry<R> {
    pub(crate) resource: Arc<R>,
    /// Nanoseconds after `Inner::origin` of the last hand-out.
    last_used: AtomicU64,
    /// Set by an eviction before it decides; a hand-out that sees it takes the slow path.
    retired: AtomicBool,
}

pub(crate) struct Inner<K, F: Factory<K>> {
    factory: F,
    entries: papaya::HashMap<K, Arc<Entry<F::Resource>>>,
    limit: Option<(Semaphore, usize, WhenFull)>,
    idle_timeout: Option<Duration>,
    clock: Clock,
    origin: Instant,
}

type Created<F, K> = Result<Arc<<F as Factory<K>>::Resource>, Error<<F as Factory<K>>::Error>>;

impl<K, F> Inner<K, F>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Factory<K>,
{
    pub(crate) fn new(builder: Builder<K, F>) -> Self {
        let origin = builder.clock.now();
        Inner {
            factory: builder.factory,
            entries: papaya::HashMap::new(),
            limit: builder
                .limit
                .map(|(max, when_full)| (Semaphore::new(max), max, when_full)),
            idle_timeout: builder.idle_timeout,
            clock: builder.clock,
            origin,
        }
    }

    fn now_nanos(&self) -> u64 {
        let elapsed = self.clock.now().saturating_duration_since(self.origin);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The entry of `key`, marked as used now, unless it is being retired. Lock-free.
    pub(crate) fn hand_out(&self, key: &K) -> Option<Arc<Entry<F::Resource>>> {
        let entry = Arc::clone(self.entries.pin().get(key)?);
        // SeqCst pairs with `evict_if_idle`: either it sees this use, or we see its mark.
        entry.last_used.store(self.now_nanos(), Ordering::SeqCst);
        (!entry.retired.load(Ordering::SeqCst)).then_some(entry)
    }

    /// Removes `entry` if it is still the entry of `key`; `true` for the one caller that did.
    pub(crate) fn take(&self, key: &K, entry: &Arc<Entry<F::Resource>>) -> bool {
        let map = self.entries.pin();
        matches!(
            map.remove_if(key, |_, e| Arc::ptr_eq(e, entry)),
            Ok(Some(_))
        )
    }

    /// Removes and closes the entry of `key`, if any.
    pub(crate) async fn remove(self: &Arc<Self>, key: &K) -> bool {
        let Some(entry) = self.entries.pin().get(key).cloned() else {
            return false;
        };
        entry.retired.store(true, Ordering::SeqCst);
        if !self.take(key, &entry) {
            return false;
        }
        self.close(entry).await;
        true
    }

    /// Retires `entry` and closes it, if this caller is the one that removed it.
    pub(crate) async fn retire(self: &Arc<Self>, key: &K, entry: Arc<Entry<F::Resource>>) {
        entry.retired.store(true, Ordering::SeqCst);
        if self.take(key, &entry) {
            self.close(entry).await;
        }
    }

    /// Closes a removed entry in a task no caller owns, then frees its slot; waits for it.
    async fn close(self: &Arc<Self>, entry: Arc<Entry<F::Resource>>) {
        let release = FreeSlot(Arc::clone(self));
        let closing = tokio::spawn(async move {
            let _release = release;
            entry.resource.close().await;
        });
        // A panicking `close` still frees its slot (FreeSlot's drop); nothing to report.
        let _ = closing.await;
    }

    fn free_slot(&self) {
        if let Some((permits, _, _)) = &self.limit {
            permits.add_permits(1);
        }
    }

    /// Creates the resource of `key` (run once per key at a time, by the creation flight).
    pub(crate) async fn create(self: Arc<Self>, key: K) -> Created<F, K> {
        // A creation that finished just before this one started already did the work.
        if let Some(entry) = self.hand_out(&key) {
            return Ok(Arc::clone(&entry.resource));
        }
        let permit = self.reserve_slot().await?;
        let resource = self.factory.create(&key).await.map_err(Error::Create)?;
        let resource = Arc::new(resource);
        let entry = Arc::new(Entry {
            resource: Arc::clone(&resource),
            last_used: AtomicU64::new(self.now_nanos()),
            retired: AtomicBool::new(false),
        });
        let replaced = self.entries.pin().insert(key, entry).cloned();
        if let Some(permit) = permit {
            permit.forget(); // the slot is now owned by the entry, freed when it is closed
        }
        if let Some(old) = replaced {
            // Only after a retire-then-recreate race: the old one must not become a zombie.
            self.close(old).await;
        }
        Ok(resource)
    }

    async fn reserve_slot(
        self: &Arc<Self>,
    ) -> Result<Option<SemaphorePermit<'_>>, Error<F::Error>> {
        let Some((permits, limit, when_full)) = &self.limit else {
            return Ok(None);
        };
        if let Ok(permit) = permits.try_acquire() {
            return Ok(Some(permit));
        }
        if self.evict_idle().await > 0
            && let Ok(permit) = permits.try_acquire()
        {
            return Ok(Some(permit));
        }
        let limit = *limit;
        match *when_full {
            WhenFull::Fail => Err(Error::LimitReached { limit }),
            WhenFull::Wait(waited) => match tokio::time::timeout(waited, permits.acquire()).await {
                Ok(Ok(permit)) => Ok(Some(permit)),
                Ok(Err(_closed)) => Err(Error::Aborted),
                Err(_elapsed) => Err(Error::Timeout { limit, waited }),
            },
        }
    }

    /// Closes every entry unused for the idle timeout; returns how many were closed.
    pub(crate) async fn evict_idle(self: &Arc<Self>) -> usize {
        let Some(idle) = self.idle_timeout else {
            return 0;
        };
        let idle = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        let candidates: Vec<_> = {
            let map = self.entries.pin();
            map.iter()
                .map(|(k, e)| (k.clone(), Arc::clone(e)))
                .collect()
        };
        let mut closed = 0;
        for (key, entry) in candidates {
            if self.evict_if_idle(&key, &entry, idle) {
                self.close(entry).await;
                closed += 1;
            }
        }
        closed
    }

    fn evict_if_idle(&self, key: &K, entry: &Arc<Entry<F::Resource>>, idle: u64) -> bool {
        let is_idle = || {
            self.now_nanos()
                .saturating_sub(entry.last_used.load(Ordering::SeqCst))
                >= idle
        };
        if !is_idle() {
            return false;
        }
        // Only an eviction that set the mark may clear it again.
        let marked =
            entry
                .retired
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst);
        if marked.is_err() {
            return false;
        }
        // Re-checked after the mark: a hand-out that missed the mark is seen here.
        if is_idle() && self.take(key, entry) {
            return true;
        }
        entry.retired.store(false, Ordering::SeqCst);
        false
    }

    /// Removes and closes every entry; returns how many were closed.
    pub(crate) async fn close_all(self: &Arc<Self>) -> usize {
        let keys: Vec<K> = self.entries.pin().keys().cloned().collect();
        let mut closed = 0;
        for key in keys {
            closed += usize::from(self.remove(&key).await);
        }
        closed
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Gives a closed entry's slot back to the live-resource limit, even if `close` panicked.
struct FreeSlot<K: Hash + Eq + Clone + Send + Sync + 'static, F: Factory<K>>(Arc<Inner<K, F>>);

impl<K: Hash + Eq + Clone + Send + Sync + 'static, F: Factory<K>> Drop for FreeSlot<K, F> {
    fn drop(&mut self) {
        self.0.free_slot();
    }
}
