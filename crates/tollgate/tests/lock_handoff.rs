//! `tollgate::lock` hands a released key to the next waiter of the same process in one store
//! step: the waiter holds it with the next fence and never asks the store itself. The waiter
//! is let in while that step is in flight; one that gives up meanwhile leaves nothing held,
//! and the holder never waits for the waiter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
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

/// The waiter's deadline passes while the hand-over is in flight: the waiter times out, and
/// once the store hands the key over the holder releases it again (owner-checked), so the key
/// is free at once instead of held by nobody until its lease ends.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_that_gives_up_during_the_hand_over_leaves_the_key_free() {
    let locks = Locks::new(Counted {
        gate: Some(Gate::default()),
        ..Counted::default()
    });
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let waiter = tokio::spawn({
        let locks = locks.clone();
        let deadline = Instant::now() + Duration::from_secs(1);
        async move { locks.acquire(key(), LEASE, Wait::Until(deadline)).await }
    });
    tokio::task::yield_now().await; // the waiter queues behind the holder
    let releasing = tokio::spawn(holder.release());
    let gate = locks.store().gate.as_ref().unwrap();
    gate.reached.notified().await;
    // The store holds the hand-over; the waiter, let in, waits for it until its deadline.
    let gave_up = waiter.await.unwrap();
    assert!(
        matches!(gave_up, Err(LockError::TimedOut { .. })),
        "{gave_up:?}"
    );
    gate.open.add_permits(1);
    releasing.await.unwrap().unwrap();
    let counted = locks.store();
    assert_eq!(counted.hand_overs.load(Ordering::SeqCst), 1);
    assert_eq!(
        counted.releases.load(Ordering::SeqCst),
        1,
        "the unclaimed key was released"
    );
    let record = counted.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.holder(), None, "{record:?}");
    let next = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    assert_eq!(
        next.fence(),
        Fence(3),
        "handed (2) and released, then acquired (3)"
    );
}

/// A task holds its own queued acquisition (polled once, then not polled while it releases,
/// as a `buffered` stream of acquisitions does): the release never waits for that waiter, and
/// the waiter, polled again, holds the key handed over to it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_release_never_waits_for_a_waiter_that_is_not_polled() {
    let locks = Locks::new(Counted::default());
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waiting = std::pin::pin!(locks.acquire(key(), LEASE, Wait::Until(deadline)));
    let queued = tokio::time::timeout(Duration::ZERO, waiting.as_mut()).await;
    assert!(queued.is_err(), "the waiter queues behind the holder");
    let released = tokio::time::timeout(Duration::from_secs(30), holder.release()).await;
    released
        .expect("the release does not wait for the waiter")
        .unwrap();
    let next = waiting.await.unwrap();
    assert_eq!(next.fence(), Fence(2), "handed over");
    let counted = locks.store();
    assert_eq!(counted.hand_overs.load(Ordering::SeqCst), 1);
    assert_eq!(counted.acquires.load(Ordering::SeqCst), 1);
}

/// The acquisition of a waiter, as a future of its own.
type Waiting = Pin<Box<dyn Future<Output = Result<LockGuard<Counted>, LockError>>>>;

/// A holder releases while a waiter of the same process (polled once: queued) waits; returns
/// the locks, the waiter and the release, the hand-over held at the store's gate.
async fn hand_over_at_the_gate() -> (Locks<Counted>, Waiting, JoinHandle<Result<(), LockError>>) {
    let locks = Locks::new(Counted {
        gate: Some(Gate::default()),
        ..Counted::default()
    });
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waiting: Waiting = Box::pin({
        let locks = locks.clone();
        async move { locks.acquire(key(), LEASE, Wait::Until(deadline)).await }
    });
    assert!(
        tokio::time::timeout(Duration::ZERO, waiting.as_mut())
            .await
            .is_err()
    );
    let releasing = tokio::spawn(holder.release());
    locks
        .store()
        .gate
        .as_ref()
        .unwrap()
        .reached
        .notified()
        .await;
    (locks, waiting, releasing)
}

/// The waiter the turn went to is dropped while the hand-over is in flight, so the turn is
/// free but the baton not yet filled: a caller that does not wait finds the key held. Nobody
/// is left to take the baton, so once the store answers the holder releases the handed key:
/// it is not left held by nobody for a lease.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn try_acquire_during_a_hand_over_finds_the_key_held_and_the_unclaimed_key_is_released() {
    let (locks, waiting, releasing) = hand_over_at_the_gate().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let gate = locks.store().gate.as_ref().unwrap();
    drop(waiting); // the turn it was given is free again; the baton is still on its way
    assert!(locks.try_acquire(key(), LEASE).await.unwrap().is_none());
    gate.open.add_permits(1);
    releasing.await.unwrap().unwrap();
    let counted = locks.store();
    let record = counted.read(&key()).await.unwrap().unwrap();
    assert_eq!(
        record.holder(),
        None,
        "released, not held by nobody: {record:?}"
    );
    assert_eq!(counted.releases.load(Ordering::SeqCst), 1);
    let next = locks
        .acquire(key(), LEASE, Wait::Until(deadline))
        .await
        .unwrap();
    assert_eq!(next.fence(), Fence(3), "handed (2), released, acquired (3)");
    assert_eq!(counted.acquires.load(Ordering::SeqCst), 2);
}

/// The only waiter is dropped while the hand-over is in flight and nobody else comes: the
/// handed key is released as soon as the store answers.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_dropped_during_the_hand_over_leaves_the_key_released() {
    let (locks, waiting, releasing) = hand_over_at_the_gate().await;
    let gate = locks.store().gate.as_ref().unwrap();
    drop(waiting);
    gate.open.add_permits(1);
    releasing.await.unwrap().unwrap();
    let counted = locks.store();
    let record = counted.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.holder(), None, "{record:?}");
    assert_eq!(record.fence, Fence(2), "handed over, then released");
    assert_eq!(counted.releases.load(Ordering::SeqCst), 1);
}

/// The waiter took the baton and waits for the store's answer; the answer arrives, and the
/// waiter is dropped before it runs again (a lost `select!` branch, an aborted task): the key
/// handed to it is released, not left held by nobody for a lease.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_dropped_after_its_baton_was_filled_releases_the_handed_key() {
    let (locks, mut waiting, releasing) = hand_over_at_the_gate().await;
    let gate = locks.store().gate.as_ref().unwrap();
    // Let in, the waiter takes the baton and waits on it.
    assert!(
        tokio::time::timeout(Duration::ZERO, waiting.as_mut())
            .await
            .is_err()
    );
    gate.open.add_permits(1);
    releasing.await.unwrap().unwrap();
    let counted = locks.store();
    assert_eq!(
        counted.releases.load(Ordering::SeqCst),
        0,
        "handed, not released"
    );
    drop(waiting);
    // Well within the handed lease (10 s): only a release lets another caller in.
    let soon = Instant::now() + Duration::from_secs(1);
    let next = locks
        .acquire(key(), LEASE, Wait::Until(soon))
        .await
        .unwrap();
    assert_eq!(next.fence(), Fence(3), "handed (2), released, acquired (3)");
    assert_eq!(counted.releases.load(Ordering::SeqCst), 1);
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
    let released = counted.store.release(&key(), lost).await.unwrap();
    assert_eq!(released, Release::Released);
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
