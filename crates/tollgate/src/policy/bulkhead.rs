//! Bulkhead: a bound on concurrent calls, with a bounded wait for a slot.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::error::BulkheadFull;

/// At most `max_concurrent` calls at once; a caller waits at most `max_wait` for a slot, then
/// gets [`BulkheadFull`]. Clones share the same slots.
#[derive(Clone, Debug)]
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    max_wait: Duration,
}

impl Bulkhead {
    /// A bulkhead of `max_concurrent` slots (at least 1) and a wait of at most `max_wait`
    /// (`Duration::ZERO`: reject at once when full).
    pub fn new(max_concurrent: usize, max_wait: Duration) -> Self {
        let max_concurrent = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Bulkhead {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            max_wait,
        }
    }

    /// The limit on concurrent calls.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Takes a slot, waiting at most `max_wait`. The slot is freed when the guard drops.
    pub async fn acquire(&self) -> Result<SemaphorePermit<'_>, BulkheadFull> {
        let full = BulkheadFull {
            max_concurrent: self.max_concurrent,
        };
        if let Ok(slot) = self.slots.try_acquire() {
            return Ok(slot);
        }
        if self.max_wait.is_zero() {
            return Err(full);
        }
        match tokio::time::timeout(self.max_wait, self.slots.acquire()).await {
            Ok(Ok(slot)) => Ok(slot),
            // The semaphore is never closed; a closed one means no slot will ever come.
            Ok(Err(_)) | Err(_) => Err(full),
        }
    }
}
