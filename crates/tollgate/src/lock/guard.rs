//! [`LockGuard`]: holds a key, renews its lease, releases it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::baton::Baton;
use super::error::LockError;
use super::locks::Locks;
use super::record::{Acquisition, Release};
use super::renewals::RenewalId;
use super::store::LockStore;
use crate::keyed;
use crate::store::lease::LeaseLost;
use crate::store::{Fence, Key, Owner, StoreError, Token};

/// Holds one key of a [`Locks`](super::Locks) while it lives.
///
/// The renewal task of its [`Locks`](super::Locks) (one for all its guards) renews the lease
/// every third of it, by the rules of [`store::lease::keep`](crate::store::lease::keep);
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
    lease: Duration,
    lost: LeaseLost,
    renewal: RenewalId,
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
        let (renewal, lost) = locks.renewals.register(key.clone(), token, lease, sent);
        LockGuard {
            locks: locks.clone(),
            key,
            token,
            lease,
            lost,
            renewal,
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
    /// for the key, the key is handed over to it in the same store step
    /// ([`LockStore::hand_over`]): the waiter is let in as the step is sent, waits for the
    /// store's answer, and holds the key with the next fence as soon as it arrives, without a
    /// round trip of its own (a waiter asking for another lease gives the key back and
    /// acquires it anew). A waiter that gave up meanwhile leaves the handed key to be released
    /// here. Dropping this call before the store answered leaves the waiter to acquire on its
    /// own (the handed lease, if the store granted it, then runs out).
    ///
    /// # Errors
    /// [`LockError::NotHolder`] when the lease was lost and the key taken over (nothing
    /// changed); [`LockError::Store`] when the store failed (the lease then runs out).
    pub async fn release(mut self) -> Result<(), LockError> {
        self.locks.renewals.cancel(self.renewal);
        let answer = match self.local.take() {
            Some(local) if local.has_waiters() => {
                // Let the next waiter in now: its wake-up overlaps the store's round trip,
                // and it holds the key only once the baton is filled with the store's answer.
                let fill = self.locks.batons.leave(self.key.clone());
                drop(local);
                self.hand_over(fill).await?
            }
            local => {
                // The next waiter (if one came meanwhile) enters once the store released.
                let released = self.locks.store.release(&self.key, self.token).await;
                drop(local);
                released?
            }
        };
        match answer {
            Release::Released => Ok(()),
            Release::NotHolder => Err(LockError::NotHolder {
                key: self.key.clone(),
                token: self.token,
            }),
        }
    }

    /// Hands the key over to the next waiter of this process in one store step, filling the
    /// baton it waits on with the next owner's token. A waiter that gave up meanwhile (its
    /// deadline passed, or it was dropped) cannot take the baton: the handed key is released
    /// again (owner-checked) rather than left to run out its lease.
    async fn hand_over(&self, fill: oneshot::Sender<Baton>) -> Result<Release, StoreError> {
        let (sent, next) = (Instant::now(), Owner::random());
        let store = &self.locks.store;
        Ok(
            match store
                .hand_over(&self.key, self.token, next, self.lease)
                .await?
            {
                None => Release::NotHolder,
                Some(Acquisition::Acquired { token, .. }) => {
                    let baton = Baton {
                        token,
                        lease: self.lease,
                        sent,
                    };
                    let local = &self.locks.local;
                    let free = || local.is_free(&self.key);
                    if let Some(unclaimed) = self.locks.batons.fill(&self.key, fill, baton, free) {
                        let _ = store.release(&self.key, unclaimed).await;
                    }
                    Release::Released
                }
                // Released, then taken by another process before the hand-over's acquisition.
                Some(Acquisition::Held { .. }) => Release::Released,
            },
        )
    }
}

impl<S: LockStore> Drop for LockGuard<S> {
    fn drop(&mut self) {
        self.locks.renewals.cancel(self.renewal);
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
