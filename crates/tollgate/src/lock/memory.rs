//! [`MemoryLockStore`]: lock records in a map, for one process and for tests.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::record::{Acquisition, LockRecord, LockState, Release};
use super::store::LockStore;
use super::transition;
use crate::clock::Clock;
use crate::store::{Key, Owner, Settle, StoreError, Timeline, Timestamp, Token};

type Records = HashMap<Key, LockRecord>;

/// A [`LockStore`] in process memory: every operation is one [`transition`] under a `std`
/// mutex held only for that map operation. Its time is its own [`Timeline`]: tokio's clock by
/// default, or the clock given to [`MemoryLockStore::with_clock`]. Records are never removed,
/// so fences never decrease. Clones share the records and the time.
#[derive(Clone)]
pub struct MemoryLockStore {
    records: Arc<Mutex<Records>>,
    timeline: Timeline,
}

impl MemoryLockStore {
    /// An empty store on tokio's clock.
    pub fn new() -> Self {
        Self::with_clock(Clock::Tokio)
    }

    /// An empty store whose time follows `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        MemoryLockStore {
            records: Arc::default(),
            timeline: Timeline::from_clock(clock),
        }
    }

    /// The store's current time, as it stamps leases.
    pub fn now(&self) -> Timestamp {
        self.timeline.now()
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryLockStore {
    fn default() -> Self {
        Self::new()
    }
}

impl LockStore for MemoryLockStore {
    async fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        let mut records = self.records();
        let step = transition::acquire(records.get(key), owner, lease, self.now());
        if let Some(record) = step.write {
            records.insert(key.clone(), record);
        }
        Ok(step.outcome)
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        let mut records = self.records();
        match transition::renew(records.get(key), token, lease, self.now()) {
            Some(record) => {
                records.insert(key.clone(), record);
                Ok(Settle::Accepted)
            }
            None => Ok(Settle::Fenced),
        }
    }

    async fn release(&self, key: &Key, token: Token) -> Result<Release, StoreError> {
        let mut records = self.records();
        let (answer, write) = transition::release(records.get(key), token);
        if let Some(record) = write {
            records.insert(key.clone(), record);
        }
        Ok(answer)
    }

    async fn read(&self, key: &Key) -> Result<Option<LockRecord>, StoreError> {
        Ok(self.records().get(key).cloned())
    }

    async fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> Result<Option<Acquisition>, StoreError> {
        let mut records = self.records();
        let Some(record) = transition::hand_over(records.get(key), from, to, lease, self.now())
        else {
            return Ok(None);
        };
        let acquired = match record.state {
            LockState::Held { lease_until, .. } => Acquisition::Acquired {
                token: Token {
                    owner: to,
                    fence: record.fence,
                },
                lease_until,
            },
            LockState::Released => return Ok(None),
        };
        records.insert(key.clone(), record);
        Ok(Some(acquired))
    }
}

impl fmt::Debug for MemoryLockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLockStore")
            .field("keys", &self.records().len())
            .finish()
    }
}
