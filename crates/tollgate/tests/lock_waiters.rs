//! `tollgate::lock` within one process, on paused tokio time: waiters are served in arrival
//! order, a dropped guard releases its key, and a cancelled waiter leaves the queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tollgate::lock::{LockErrorKind, Locks, MemoryLockStore, Wait};
use tollgate::store::Key;

const LEASE: Duration = Duration::from_secs(10);

fn key() -> Key {
    Key::new("wallet", "1")
}

fn patient() -> Wait {
    Wait::Until(Instant::now() + Duration::from_secs(600))
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn waiters_of_one_process_are_served_in_arrival_order() {
    let locks = Locks::new(MemoryLockStore::new());
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..5 {
        let (locks, served) = (locks.clone(), Arc::clone(&served));
        waiters.push(tokio::spawn(async move {
            let guard = locks.acquire(key(), LEASE, patient()).await.unwrap();
            served.lock().unwrap().push((i, guard.fence().0));
            guard.release().await.unwrap();
        }));
        // Waiter i queues before waiter i + 1 arrives.
        tokio::task::yield_now().await;
    }
    holder.release().await.unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    let served = served.lock().unwrap().clone();
    assert_eq!(served, vec![(0, 2), (1, 3), (2, 4), (3, 5), (4, 6)]);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_dropped_guard_releases_its_key_to_another_process() {
    let store = MemoryLockStore::new();
    let (here, elsewhere) = (Locks::new(store.clone()), Locks::new(store));
    let guard = here.try_acquire(key(), LEASE).await.unwrap().unwrap();
    assert!(elsewhere.try_acquire(key(), LEASE).await.unwrap().is_none());
    let started = Instant::now();
    drop(guard);
    let next = elsewhere.acquire(key(), LEASE, patient()).await.unwrap();
    assert_eq!(next.fence().0, 2);
    assert!(started.elapsed() < LEASE, "released on drop, not by expiry");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let locks = Locks::new(MemoryLockStore::new());
    let holder = locks.try_acquire(key(), LEASE).await.unwrap().unwrap();
    let waiting = locks.acquire(key(), LEASE, patient());
    let cancelled = tokio::time::timeout(Duration::from_secs(1), waiting).await;
    assert!(cancelled.is_err());
    let soon = Wait::Until(Instant::now() + Duration::from_secs(1));
    let timed_out = locks.acquire(key(), LEASE, soon).await.unwrap_err();
    assert_eq!(timed_out.kind(), LockErrorKind::TimedOut);
    holder.release().await.unwrap();
    let next = locks.try_acquire(key(), LEASE).await.unwrap();
    assert_eq!(next.map(|g| g.fence().0), Some(2));
}
