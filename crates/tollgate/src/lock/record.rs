//! A key's lock record and the answers of its store operations.

use crate::store::{Fence, Owner, Timestamp, Token};

/// What a store keeps for one lock key. The record outlives every holder: a released lock keeps
/// its fence, so the next holder's fence is always higher than every fence granted before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockRecord {
    /// The fence of the latest holder (the lock's current or last one).
    pub fence: Fence,
    /// Whether that holder still holds the lock.
    pub state: LockState,
}

/// The state of a lock record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Held by `owner` until `lease_until` on the store's clock (unless renewed). A lease that
    /// ran out still belongs to its holder until someone else acquires the key.
    Held {
        /// Who holds it.
        owner: Owner,
        /// When the lease ends, on the store's clock.
        lease_until: Timestamp,
    },
    /// Released by its holder; the fence stays.
    Released,
}

impl LockRecord {
    /// The holder's token while the record is held (whether or not its lease ran out).
    pub fn holder(&self) -> Option<Token> {
        match self.state {
            LockState::Held { owner, .. } => Some(Token {
                owner,
                fence: self.fence,
            }),
            LockState::Released => None,
        }
    }
}

/// The answer to an acquisition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquisition {
    /// The caller holds the key with `token` until `lease_until` (store time).
    Acquired {
        /// The caller's token; its fence is higher than any fence granted before for the key.
        token: Token,
        /// When the lease ends, on the store's clock.
        lease_until: Timestamp,
    },
    /// Another owner holds a live lease on the key.
    Held {
        /// The holder's token.
        holder: Token,
        /// When the holder's lease ends unless it renews, on the store's clock.
        lease_until: Timestamp,
    },
}

/// The answer to a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a release by a non-holder changed nothing"]
pub enum Release {
    /// The caller held the key and released it.
    Released,
    /// The caller does not hold the key (another owner, a later fence, or already released):
    /// nothing changed.
    NotHolder,
}
