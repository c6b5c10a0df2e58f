//! [`Batons`]: keys a releasing holder handed over, in one store step, to the next waiter of
//! the same process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

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

/// The batons left for the waiters of one [`Locks`](super::Locks), one per key at most.
#[derive(Debug, Default)]
pub(super) struct Batons(Mutex<HashMap<Key, Baton>>);

impl Batons {
    /// Leaves `baton` for the next task of this process that gets its turn at `key`.
    pub(super) fn leave(&self, key: Key, baton: Baton) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, baton);
    }

    /// The baton left at `key`, if any.
    pub(super) fn take(&self, key: &Key) -> Option<Baton> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }
}
