//! [`Locks`]: the client — acquire with a wait policy, get a [`LockGuard`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::baton::{Batons, PendingBaton};
use super::error::{LockError, LockErrorKind};
use super::guard::{Held, LockGuard};
use super::record::Acquisition;
use super::renewals::Renewals;
use super::store::LockStore;
use crate::keyed;
use crate::store::{Key, Owner, Token};

/// The first pause between two attempts on a key held elsewhere; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// How long [`Locks::acquire`] waits for a held key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Fail at once with [`LockError::Held`].
    Fail,
    /// Wait until this instant, then fail with [`LockError::TimedOut`].
    Until(Instant),
}

/// Leased, fenced locks over a [`LockStore`]: see the [module](super) docs.
///
/// Cheap to clone: clones share the store and the in-process queue of waiters.
pub struct Locks<S> {
    pub(super) store: Arc<S>,
    pub(super) local: keyed::Mutex<Key>,
    pub(super) batons: Arc<Batons>,
    pub(super) renewals: Renewals<S>,
}

impl<S> Clone for Locks<S> {
    fn clone(&self) -> Self {
        Locks {
            store: Arc::clone(&self.store),
            local: self.local.clone(),
            batons: Arc::clone(&self.batons),
            renewals: self.renewals.clone(),
        }
    }
}

impl<S: LockStore> Locks<S> {
    /// Locks kept in `store`.
    pub fn new(store: S) -> Self {
        let store = Arc::new(store);
        Locks {
            renewals: Renewals::new(Arc::clone(&store)),
            store,
            local: keyed::Mutex::new(),
            batons: Arc::default(),
        }
    }

    /// The store the locks are kept in.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Acquires `key` for `lease` if it is free now; `Ok(None)` when another owner (in this
    /// process or elsewhere) holds it.
    pub async fn try_acquire(
        &self,
        key: Key,
        lease: Duration,
    ) -> Result<Option<LockGuard<S>>, LockError> {
        match self.acquire(key, lease, Wait::Fail).await {
            Ok(guard) => Ok(Some(guard)),
            Err(LockError::Held { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Acquires `key` for `lease`, waiting as `wait` says while another owner holds it.
    ///
    /// Waiters in this process queue in arrival order and only the first asks the store, with
    /// a backoff (5 ms doubling to 250 ms) between attempts. The lease is renewed every third
    /// of `lease` while the guard lives (by one renewal task per `Locks`, shared by its
    /// guards). Cancel-safe before it returns: a dropped call holds
    /// nothing (a lock the store granted while the call was being dropped runs out with its
    /// lease).
    pub async fn acquire(
        &self,
        key: Key,
        lease: Duration,
        wait: Wait,
    ) -> Result<LockGuard<S>, LockError> {
        let acquired = self.acquire_counted(&key, lease, wait).await;
        let outcome = match &acquired {
            Ok(_) => "acquired",
            Err(e) => match e.kind() {
                LockErrorKind::Held => "held",
                LockErrorKind::TimedOut => "timed_out",
                _ => "failed",
            },
        };
        metrics::counter!("tollgate_lock_acquisitions_total",
            "namespace" => key.namespace().to_owned(), "outcome" => outcome)
        .increment(1);
        acquired
    }

    async fn acquire_counted(
        &self,
        key: &Key,
        lease: Duration,
        wait: Wait,
    ) -> Result<LockGuard<S>, LockError> {
        // Declared first, dropped last: after this call's turn and baton are gone.
        let mut interest = Interest {
            locks: self,
            key,
            taken: None,
        };
        let mut contended = Contention::new(key);
        let local = self.turn(key, wait, &mut contended).await?;
        if let Some(pending) = self.batons.take(key) {
            // A holder of this process let us in as it sent the hand-over: wait for the
            // store's answer (bounded by the store's own timeout, and by our deadline). The
            // receiver stays in `interest` until its baton is used: a call that times out or
            // is dropped meanwhile releases a baton that arrived.
            let pending = interest.taken.insert(pending);
            let baton = match wait {
                Wait::Until(deadline) => tokio::time::timeout_at(deadline, &mut *pending)
                    .await
                    .map_err(|_| LockError::TimedOut { key: key.clone() })?
                    .ok(),
                Wait::Fail => match pending.try_recv() {
                    Ok(baton) => Some(baton),
                    Err(oneshot::error::TryRecvError::Empty) => {
                        // Being handed over: held, for a caller that does not wait.
                        if let Some(pending) = interest.taken.take() {
                            self.batons.put_back(key.clone(), pending);
                        }
                        return Err(LockError::Held {
                            key: key.clone(),
                            holder: None,
                            lease_until: None,
                        });
                    }
                    Err(oneshot::error::TryRecvError::Closed) => None,
                },
            };
            interest.taken = None;
            if let Some(baton) = baton {
                if baton.usable_for(lease) {
                    let held = Held::new(key.clone(), baton.token, lease, local);
                    return Ok(LockGuard::start(self, held, baton.sent));
                }
                // Handed over for another lease, or too late: give it back (owner-checked).
                let _ = self.store.release(key, baton.token).await;
            }
        }
        let owner = Owner::random();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let sent = Instant::now();
            let (holder, lease_until) = match self.store.acquire(key, owner, lease).await? {
                Acquisition::Acquired { token, .. } => {
                    let held = Held::new(key.clone(), token, lease, local);
                    return Ok(LockGuard::start(self, held, sent));
                }
                Acquisition::Held {
                    holder,
                    lease_until,
                } => (holder, lease_until),
            };
            contended.note();
            let deadline = match wait {
                Wait::Until(deadline) if Instant::now() < deadline => deadline,
                Wait::Until(_) => return Err(LockError::TimedOut { key: key.clone() }),
                Wait::Fail => {
                    let (holder, lease_until) = (Some(holder), Some(lease_until));
                    return Err(LockError::Held {
                        key: key.clone(),
                        holder,
                        lease_until,
                    });
                }
            };
            let jitter = backoff.mul_f64(fastrand::f64() * 0.5);
            tokio::time::sleep_until((Instant::now() + backoff + jitter).min(deadline)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// This task's turn at `key` among the waiters of this process, in arrival order.
    async fn turn(
        &self,
        key: &Key,
        wait: Wait,
        contended: &mut Contention<'_>,
    ) -> Result<keyed::Guard<Key>, LockError> {
        if let Some(turn) = self.local.try_lock(key.clone()) {
            return Ok(turn);
        }
        contended.note();
        match wait {
            Wait::Fail => Err(LockError::Held {
                key: key.clone(),
                holder: None,
                lease_until: None,
            }),
            Wait::Until(deadline) => {
                tokio::time::timeout_at(deadline, self.local.lock(key.clone()))
                    .await
                    .map_err(|_| LockError::TimedOut { key: key.clone() })
            }
        }
    }
}

/// Ends an acquisition, however it ends (held, refused, timed out or dropped): a filled baton
/// that no task of this process will take any more — its holder counted this call as a
/// waiter — is withdrawn and its key released on the store, not left held by nobody for a
/// lease.
///
/// It also keeps the baton this call took until the call uses it: a call that times out or is
/// dropped while the store's answer arrives releases the key that answer handed it.
struct Interest<'a, S: LockStore> {
    locks: &'a Locks<S>,
    key: &'a Key,
    taken: Option<PendingBaton>,
}

impl<S: LockStore> Drop for Interest<'_, S> {
    fn drop(&mut self) {
        let handed = self.taken.take().and_then(|mut pending| {
            // Closed first: a holder filling it from now on finds it gone and releases itself.
            pending.close();
            pending.try_recv().ok().map(|baton| baton.token)
        });
        let local = &self.locks.local;
        let reaped = self.locks.batons.reap(self.key, || local.is_free(self.key));
        for token in [handed, reaped].into_iter().flatten() {
            self.release(token);
        }
    }
}

impl<S: LockStore> Interest<'_, S> {
    /// Releases `token` in a task of its own (outside a runtime its lease runs out).
    fn release(&self, token: Token) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key) = (Arc::clone(&self.locks.store), self.key.clone());
        runtime.spawn(async move {
            if let Err(e) = store.release(&key, token).await {
                tracing::warn!(lock = %key, error = %e, "lock: release of an unclaimed hand-over failed");
            }
        });
    }
}

/// Counts an acquisition that found its key held (in this process or elsewhere) once, in
/// `tollgate_lock_contended_total`.
struct Contention<'k> {
    key: &'k Key,
    counted: bool,
}

impl<'k> Contention<'k> {
    fn new(key: &'k Key) -> Self {
        Contention {
            key,
            counted: false,
        }
    }

    fn note(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            metrics::counter!("tollgate_lock_contended_total",
                "namespace" => self.key.namespace().to_owned())
            .increment(1);
        }
    }
}

impl<S> fmt::Debug for Locks<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locks").finish_non_exhaustive()
    }
}
