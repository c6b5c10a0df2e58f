//! `tollgate::lock` hands a released key to the next waiter of the same process in one store
//! step: the waiter holds it with the next fence and never asks the store itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tollgate::lock::{
    Acquisition, LockGuard, LockRecord, LockState, LockStore, Locks, MemoryLockStore, Release, Wait,
};
use tollgate::store::{Fence, Key, Owner, Settle, StoreError, Token};

const LEASE: Duration = Duration::from_secs(10);

/// A memory store that counts acquisitions, releases and hand-overs.
#[derive(Default)]
struct Counted {
    store: MemoryLockStore,
    acquires: AtomicUsize,
    releases: AtomicUsize,
    hand_overs: AtomicUsize,
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
async fn a_waiter_asking_for_another_lease_gives_the_baton_back_and_acquires_anew() {
    let locks = Locks::new(Counted::default());
    let next = released_to_a_waiter(&locks, LEASE * 2).await;
    assert_eq!(
        next.fence(),
        Fence(3),
        "handed over (2), given back, acquired (3)"
    );
    let counted = locks.store();
    assert_eq!(counted.releases.load(Ordering::SeqCst), 1);
    assert_eq!(counted.acquires.load(Ordering::SeqCst), 2);
}
