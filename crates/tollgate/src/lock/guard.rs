//! [`LockGuard`]: holds a key, renews its lease, releases it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::error::LockError;
use super::locks::Locks;
use super::record::Release;
use super::store::LockStore;
use crate::keyed;
use crate::store::lease::{self, LeaseLost, LeaseTiming, LostReason};
use crate::store::{Fence, Key, StoreError, Token};

/// Holds one key of a [`Locks`](super::Locks) while it lives.
///
/// A spawned task renews the lease every third of it ([`store::lease::keep`](lease::keep));
/// when the store rejects a renewal or none succeeds for nine tenths of the lease (a margin
/// for late timers, so the holder is told while the lease is still live on the store),
/// [`LockGuard::lost`] fires and the holder must stop writing. Pass [`LockGuard::fence`] with
/// every write to the protected resource, so the resource itself rejects a holder that was
/// replaced (see `tollgate_sqlite::fenced_update`).
///
/// Dropping the guard stops the renewal and releases the key in a spawned task (owner-checked,
/// like [`LockGuard::release`]); without a tokio runtime the lease simply runs out.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<S: LockStore> {
    locks: Locks<S>,
    key: Key,
    token: Token,
    lost: LeaseLost,
    keeper: AbortHandle,
    // `None` once released explicitly; the next waiter of this process enters when it drops.
    local: Option<keyed::Guard<Key>>,
}

/// What a new guard holds: the key with `token` for `lease`, and its turn in this process.
pub(super) struct Held {
    key: Key,
    token: Token,
    lease: Duration,
    local: keyed::Guard<Key>,
}

impl Held {
    pub(super) fn new(key: Key, token: Token, lease: Duration, local: keyed::Guard<Key>) -> Self {
        Held {
            key,
            token,
            lease,
            local,
        }
    }
}

impl<S: LockStore> LockGuard<S> {
    /// Starts renewing `held` (granted by a request sent at `sent`).
    pub(super) fn start(locks: &Locks<S>, held: Held, sent: Instant) -> Self {
        let Held {
            key,
            token,
            lease,
            local,
        } = held;
        // The holder gives up its lease a tenth of it before the store's end (from the instant
        // the last successful request was sent): timers fire late and tasks are scheduled late,
        // and the lost-lease signal must fire while the lease is still live on the store.
        let timing = LeaseTiming::new(lease - lease / 10, lease / 3);
        let (renewing, renew_key) = (Arc::clone(&locks.store), key.clone());
        let renew = move || {
            let (store, key) = (Arc::clone(&renewing), renew_key.clone());
            async move { store.renew(&key, token, lease).await }
        };
        let (keeper, lost) = lease::keep(format!("lock {key}"), timing, sent, renew);
        let namespace = key.namespace().to_owned();
        let keeper = tokio::spawn(async move {
            let reason = keeper.await;
            let reason = match reason {
                LostReason::Fenced => "fenced",
                LostReason::Expired => "expired",
            };
            metrics::counter!("tollgate_lock_lost_total",
                "namespace" => namespace, "reason" => reason)
            .increment(1);
        })
        .abort_handle();
        LockGuard {
            locks: locks.clone(),
            key,
            token,
            lost,
            keeper,
            local: Some(local),
        }
    }

    /// The key held.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The fencing token: higher than every fence granted before for this key. Carry it into
    /// every write to the protected resource.
    pub fn fence(&self) -> Fence {
        self.token.fence
    }

    /// The owner and fence this guard holds the key with.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The lost-lease signal: fires once when the store rejected a renewal (the key was taken
    /// over) or no renewal succeeded for nine tenths of the lease. `select!` the protected work on
    /// [`LeaseLost::wait`].
    pub fn lost(&self) -> LeaseLost {
        self.lost.clone()
    }

    /// Releases the key now, if this guard still holds it. When a task of this process waits
    /// for the key, it is let in at once with this guard's token and hands the key over to
    /// itself in one store step ([`LockStore::hand_over`]): it holds the key with the next
    /// fence after one round trip of its own, as an uncontended acquisition would, and this
    /// call returns the store's answer to that step. If that task is dropped before the store
    /// answered, this call releases the key itself (and reports what the store says of this
    /// guard's token).
    ///
    /// # Errors
    /// [`LockError::NotHolder`] when the lease was lost and the key taken over (nothing
    /// changed); [`LockError::Store`] when the store failed (the lease then runs out).
    pub async fn release(mut self) -> Result<(), LockError> {
        self.keeper.abort();
        let answer = match self.local.take() {
            Some(local) if local.has_waiters() => self.hand_over(local).await,
            local => {
                // The next waiter (if one came meanwhile) enters once the store released.
                let released = self.locks.store.release(&self.key, self.token).await;
                drop(local);
                released
            }
        };
        match answer? {
            Release::Released => Ok(()),
            Release::NotHolder => Err(LockError::NotHolder {
                key: self.key.clone(),
                token: self.token,
            }),
        }
    }

    /// Leaves this guard's token for the next waiter of this process, lets it in, and waits
    /// for the answer it gets from the store. Should nobody take the token (the waiter was
    /// dropped before its turn came), this task gets the turn back, takes the token back and
    /// releases the key itself.
    async fn hand_over(&self, local: keyed::Guard<Key>) -> Result<Release, StoreError> {
        let answered = self.locks.batons.leave(self.key.clone(), self.token);
        drop(local);
        let turn = tokio::select! {
            biased;
            answer = answered => match answer {
                Ok(answer) => return answer,
                // The waiter was dropped during its hand-over: whatever the store did, this
                // token either still holds the key or no longer does; ask by releasing.
                Err(_) => None,
            },
            turn = self.locks.local.lock(self.key.clone()) => Some(turn),
        };
        if turn.is_some() {
            // Our turn came back before anyone took the token: nobody will.
            drop(self.locks.batons.take(&self.key));
        }
        let released = self.locks.store.release(&self.key, self.token).await;
        drop(turn);
        released
    }
}

impl<S: LockStore> Drop for LockGuard<S> {
    fn drop(&mut self) {
        self.keeper.abort();
        let Some(local) = self.local.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key, token) = (Arc::clone(&self.locks.store), self.key.clone(), self.token);
        runtime.spawn(async move {
            // The next waiter of this process enters only once the store has released.
            let _local = local;
            if let Err(e) = store.release(&key, token).await {
                tracing::warn!(lock = %key, error = %e, "lock: release on drop failed");
            }
        });
    }
}

impl<S: LockStore> fmt::Debug for LockGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.key)
            .field("token", &self.token)
            .field("lost", &self.lost.reason())
            .finish_non_exhaustive()
    }
}
