//! `tollgate::lock` hands a released key to the next waiter of the same process in one store
//! step: the waiter holds it with the next fence and never asks the store itself. The waiter
//! is let in while that step is in flight; one that gives up meanwhile leaves nothing held.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tollgate::lock::{
    Acquisition, LockError, LockGuard, LockRecord, LockState, LockStore, Locks, MemoryLockStore,
    Release, Wait,
};
use tollgate::store::{Fence, Key, Owner, Settle, StoreError, Token};

const LEASE: Duration = Duration::from_secs(10);

/// A memory store that counts acquisitions, releases and hand-overs; a hand-over can be held
/// at a gate (it says when it got there).
#[derive(Default)]
struct Counted {
    store: MemoryLockStore,
    acquires: AtomicUsize,
    releases: AtomicUsize,
    hand_overs: AtomicUsize,
    gate: Option<Gate>,
}

struct Gate {
    reached: Notify,
    open: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            reached: Notify::new(),
            open: Semaphore::new(0),
        }
    }
}

impl LockStore for Counted {
    async fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        self.acquires.fetch_add(1, Ordering::SeqCst);
        self.store.acquire(key, owner, lease).await
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        self.store.renew(key, token, lease).await
    }

    async fn release(&self, key: &Key, token: Token) -> Result<Release, StoreError> {
        self.releases.fetch_add(1, Ordering::SeqCst);
        self.store.release(key, token).await
    }

    async fn read(&self, key: &Key) -> Result<Option<LockRecord>, StoreError> {
        self.store.read(key).await
    }

    async fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> Result<Option<Acquisition>, StoreError> {
        self.hand_overs.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.reached.notify_one();
            let _pass = gate.open.acquire().await.unwrap();
        }
        self.store.hand_over(key, from, to, lease).await
    }
}

fn key() -> Key {
    Key::new("wallet", "1")
}

/// A holder releases the key while a task of the same process waits for it with `lease`;
/// returns the waiter's guard.
async fn released_to_a_waiter(locks: &Locks<Counted>, lease: Duration) -> LockGuard<Counted> {
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let waiter = tokio::spawn({
        let locks = locks.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        async move { locks.acquire(key(), lease, Wait::Until(deadline)).await }
    });
    tokio::task::yield_now().await; // the waiter queues behind the holder
    holder.release().await.unwrap();
    waiter.await.unwrap().unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_release_hands_the_key_to_a_local_waiter_in_one_store_step() {
    let locks = Locks::new(Counted::default());
    let next = released_to_a_waiter(&locks, LEASE).await;
    assert_eq!(next.fence(), Fence(2));
    let counted = locks.store();
    let calls = |n: &AtomicUsize| n.load(Ordering::SeqCst);
    assert_eq!(
        calls(&counted.acquires),
        1,
        "only the first holder asked to acquire"
    );
    assert_eq!(calls(&counted.hand_overs), 1);
    assert_eq!(calls(&counted.releases), 0);
    let record = counted.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.holder(), Some(next.token()));
    assert!(matches!(record.state, LockState::Held { .. }));
    next.release().await.unwrap();
    assert_eq!(calls(&counted.releases), 1, "nobody waits: a plain release");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_asking_for_another_lease_gets_it_in_the_same_hand_over() {
    let locks = Locks::new(Counted::default());
    let next = released_to_a_waiter(&locks, LEASE * 2).await;
    assert_eq!(
        next.fence(),
        Fence(2),
        "handed over once, with the waiter's lease"
    );
    let counted = locks.store();
    assert_eq!(counted.hand_overs.load(Ordering::SeqCst), 1);
    assert_eq!(counted.releases.load(Ordering::SeqCst), 0);
    assert_eq!(counted.acquires.load(Ordering::SeqCst), 1);
    let record = counted.read(&key()).await.unwrap().unwrap();
    let LockState::Held { lease_until, .. } = record.state else {
        panic!("{record:?}");
    };
    let granted = counted.store.now();
    assert_eq!(lease_until, granted.plus(LEASE * 2), "the waiter's lease");
}

/// The waiter that took the holder's token is dropped while its hand-over is held at the
/// store: the holder's `release` does not hang, releases the key itself, and the key is free
/// at once instead of held by nobody until its lease ends.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_dropped_during_the_hand_over_leaves_the_holder_to_release() {
    let locks = Locks::new(Counted {
        gate: Some(Gate::default()),
        ..Counted::default()
    });
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let waiter = tokio::spawn({
        let locks = locks.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        async move { locks.acquire(key(), LEASE, Wait::Until(deadline)).await }
    });
    tokio::task::yield_now().await; // the waiter queues behind the holder
    let releasing = tokio::spawn(holder.release());
    let gate = locks.store().gate.as_ref().unwrap();
    gate.reached.notified().await; // the waiter's hand-over is at the store
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    let released = tokio::time::timeout(Duration::from_secs(60), releasing).await;
    released.expect("release never hangs").unwrap().unwrap();
    let counted = locks.store();
    assert_eq!(counted.hand_overs.load(Ordering::SeqCst), 1);
    assert_eq!(
        counted.releases.load(Ordering::SeqCst),
        1,
        "the holder released"
    );
    let record = counted.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.holder(), None, "{record:?}");
    let next = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    assert_eq!(next.fence(), Fence(2));
}

/// The waiter is dropped after the holder saw it but before its turn came, so nobody takes
/// the holder's token: the holder gets the turn back, takes its token back and releases.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_token_nobody_takes_is_taken_back_and_released() {
    let locks = Locks::new(Counted::default());
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let waiter = tokio::spawn({
        let locks = locks.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        async move { locks.acquire(key(), LEASE, Wait::Until(deadline)).await }
    });
    tokio::task::yield_now().await; // the waiter queues behind the holder
    waiter.abort(); // dropped only when the runtime next gets to it: after release() looked
    let released = tokio::time::timeout(Duration::from_secs(60), holder.release()).await;
    released.expect("release never hangs").unwrap();
    assert!(waiter.await.unwrap_err().is_cancelled());
    let counted = locks.store();
    assert_eq!(counted.hand_overs.load(Ordering::SeqCst), 0);
    assert_eq!(counted.releases.load(Ordering::SeqCst), 1);
    let next = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    assert_eq!(next.fence(), Fence(2));
    assert_eq!(
        counted.hand_overs.load(Ordering::SeqCst),
        0,
        "no token was left behind for the next acquirer"
    );
}

/// The hand-over fails on the store (here: the holder had already lost the key): the waiter,
/// let in early, acquires on its own as soon as the key is free, and the holder is told.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hand_over_the_store_refuses_leaves_the_waiter_to_acquire_on_its_own() {
    let locks = Locks::new(Counted::default());
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let waiter = tokio::spawn({
        let locks = locks.clone();
        let deadline = Instant::now() + LEASE * 3;
        async move { locks.acquire(key(), LEASE, Wait::Until(deadline)).await }
    });
    tokio::task::yield_now().await;
    // Another owner takes the key over once the holder's lease ended without renewal.
    let counted = locks.store();
    let lost = holder.token();
    counted.store.release(&key(), lost).await.unwrap();
    let other = counted
        .store
        .acquire(&key(), Owner::random(), Duration::from_secs(1))
        .await
        .unwrap();
    let Acquisition::Acquired { token: other, .. } = other else {
        panic!("{other:?}");
    };
    let refused = holder.release().await;
    assert!(
        matches!(refused, Err(LockError::NotHolder { .. })),
        "{refused:?}"
    );
    // The waiter asks the store itself and gets the key once the other owner's lease ends.
    let next = waiter.await.unwrap().unwrap();
    assert_eq!(next.fence(), Fence(other.fence.0 + 1));
    assert_eq!(counted.hand_overs.load(Ordering::SeqCst), 1);
}
