//! [`Batons`]: a releasing holder's token, passed to the next waiter of the same process so
//! the waiter hands the key over to itself in one store step.
//!
//! The holder leaves a [`Baton`] (its token, and a way to answer it) and lets the waiter in at
//! once; the waiter sends the hand-over ([`LockStore::hand_over`](super::LockStore::hand_over))
//! from its own task and tells the holder what the store said. The store's answer therefore
//! reaches the task that needs it directly: a hand-off costs the waiter's wake-up plus one
//! store step, as an uncontended acquisition costs one store step.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

use super::record::Release;
use crate::store::{Key, StoreError, Token};

/// The store's answer to a hand-over, for the holder that asked for it.
pub(super) type Answer = Result<Release, StoreError>;

/// A releasing holder's token, left for the next task of this process that gets its turn at
/// the key. Dropped unanswered (its taker was dropped mid-hand-over), the holder releases the
/// key itself.
#[derive(Debug)]
pub(super) struct Baton {
    /// The holder's token: the hand-over is fenced by it.
    pub(super) from: Token,
    answer: oneshot::Sender<Answer>,
}

impl Baton {
    /// Tells the holder what the store said of its token.
    pub(super) fn answer(self, answer: Answer) {
        // The holder may have stopped waiting (its `release` was dropped): nothing to tell.
        let _ = self.answer.send(answer);
    }
}

/// The batons left for the waiters of one [`Locks`](super::Locks), one per key at most.
#[derive(Debug, Default)]
pub(super) struct Batons(Mutex<HashMap<Key, Baton>>);

impl Batons {
    /// Leaves `from` for the next task that gets its turn at `key`; the receiver gets the
    /// store's answer to the hand-over that task sends.
    pub(super) fn leave(&self, key: Key, from: Token) -> oneshot::Receiver<Answer> {
        let (answer, answered) = oneshot::channel();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Baton { from, answer });
        answered
    }

    /// The baton left at `key`, if any.
    pub(super) fn take(&self, key: &Key) -> Option<Baton> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }
}
