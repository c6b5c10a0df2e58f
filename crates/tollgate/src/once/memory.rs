//! [`MemoryStore`]: records in a map, for one process and for tests.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::record::{ClaimOutcome, ClaimRequest, Record, Resolution};
use super::store::Store;
use super::transition;
use crate::clock::Clock;
use crate::store::{Key, Settle, StoreError, Timeline, Timestamp, Token};

type Records = HashMap<Key, Record>;

/// A [`Store`] in process memory: no I/O, nothing survives the process.
///
/// Every operation is one [`transition`] applied under a `std` mutex held only for that map
/// operation (never across an `.await`). Its time is its own [`Timeline`]: by default tokio's
/// clock (so `tokio::time::pause` and `advance` move leases in tests), or any clock given to
/// [`MemoryStore::with_clock`]. Clones share the records and the time.
#[derive(Clone)]
pub struct MemoryStore {
    records: Arc<Mutex<Records>>,
    timeline: Timeline,
}

impl MemoryStore {
    /// An empty store on tokio's clock.
    pub fn new() -> Self {
        Self::with_clock(Clock::Tokio)
    }

    /// An empty store whose time follows `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        MemoryStore {
            records: Arc::default(),
            timeline: Timeline::from_clock(clock),
        }
    }

    /// The store's current time, as it stamps leases and retention.
    pub fn now(&self) -> Timestamp {
        self.timeline.now()
    }

    /// Number of records held (any state).
    pub fn len(&self) -> usize {
        self.records().len()
    }

    /// `true` when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settle(
        &self,
        key: &Key,
        apply: impl FnOnce(Option<&Record>, Timestamp) -> Option<Record>,
    ) -> Settle {
        let mut records = self.records();
        match apply(records.get(key), self.now()) {
            Some(record) => {
                records.insert(key.clone(), record);
                Settle::Accepted
            }
            None => Settle::Fenced,
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Store for MemoryStore {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let mut records = self.records();
        let step = transition::claim(records.get(&req.key), &req, self.now());
        if let Some(record) = step.write {
            records.insert(req.key, record);
        }
        Ok(step.outcome)
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        Ok(self.settle(key, |r, now| transition::renew(r, token, lease, now)))
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(key, |r, now| {
            transition::complete(r, token, result, retention, now)
        }))
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(key, |r, now| {
            transition::fail(r, token, error, retryable, retention, now)
        }))
    }

    async fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(key, |r, now| {
            transition::resolve(r, previous, resolution, retention, now)
        }))
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        Ok(self.records().get(key).cloned())
    }

    async fn purge(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, record| !transition::is_purgeable(record, now));
        Ok((before - records.len()) as u64)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish()
    }
}
