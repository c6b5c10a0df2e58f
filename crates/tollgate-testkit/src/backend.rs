//! [`Backend`]: what a store backend gives the conformance suite.

use std::future::Future;
use std::time::Duration;

use tollgate::clock::{Clock, ManualClock};
use tollgate::once::{MemoryStore, Store};

/// One database of a backend under test, fresh for each case: handles onto its records, and
/// a way to move **the store's** clock.
///
/// Embedded backends put the store's time on a [`ManualClock`] the suite moves; a server
/// backend whose time is the server's moves it however it can (waiting for it, or a
/// test-only offset the store adds to the server's time).
pub trait Backend: Send + Sync + 'static {
    /// The store type.
    type Store: Store + Clone;

    /// A handle onto this database's records: for an embedded store a new connection, for a
    /// server a new client. Every handle sees the same records and the same time.
    fn connect(&self) -> impl Future<Output = Self::Store> + Send;

    /// Moves the store's time forward by `by`.
    fn advance(&self, by: Duration) -> impl Future<Output = ()> + Send;
}

/// The in-memory backend: one [`MemoryStore`] on a [`ManualClock`]; handles are clones.
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    store: MemoryStore,
    clock: ManualClock,
}

impl MemoryBackend {
    /// A fresh, empty store.
    pub fn new() -> Self {
        let clock = ManualClock::new();
        MemoryBackend {
            store: MemoryStore::with_clock(Clock::Manual(clock.clone())),
            clock,
        }
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for MemoryBackend {
    type Store = MemoryStore;

    async fn connect(&self) -> MemoryStore {
        self.store.clone()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}
