//! [`MemoryStore`]: records in a map, for one process and for tests.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::key::{Key, Timestamp, Token};
use super::record::{ClaimOutcome, ClaimRequest, Record, Settle};
use super::store::{Store, StoreError};
use super::transition;

type Records = HashMap<Key, Record>;

/// A [`Store`] in process memory: no I/O, nothing survives the process.
///
/// Every operation is one [`transition`] applied under a `std` mutex held only for that map
/// operation (never across an `.await`). Clones share the records.
#[derive(Clone, Default)]
pub struct MemoryStore {
    records: Arc<Mutex<Records>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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

    fn settle(&self, key: &Key, apply: impl FnOnce(Option<&Record>) -> Option<Record>) -> Settle {
        let mut records = self.records();
        match apply(records.get(key)) {
            Some(record) => {
                records.insert(key.clone(), record);
                Settle::Done
            }
            None => Settle::Fenced,
        }
    }
}

impl Store for MemoryStore {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let mut records = self.records();
        let step = transition::claim(records.get(&req.key), &req);
        if let Some(record) = step.write {
            records.insert(req.key, record);
        }
        Ok(step.outcome)
    }

    async fn renew(
        &self,
        key: &Key,
        token: Token,
        lease_until: Timestamp,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(key, |r| transition::renew(r, token, lease_until)))
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        expires_at: Timestamp,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(key, |r| transition::complete(r, token, result, expires_at)))
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        expires_at: Timestamp,
    ) -> Result<Settle, StoreError> {
        Ok(self.settle(key, |r| {
            transition::fail(r, token, error, retryable, expires_at)
        }))
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        Ok(self.records().get(key).cloned())
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, StoreError> {
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
