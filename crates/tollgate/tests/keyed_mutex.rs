//! keyed::Mutex: mutual exclusion per key, cleanup of per-key state, deadlock-free lock_many.
// Helpers outside #[test] functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/flight.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::{spawn_gated, spawn_registered};
use tollgate::keyed::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_holder_per_key_and_no_state_left_when_idle() {
    const TASKS: usize = 1_000;
    let locks = Mutex::new();
    let held: Arc<Vec<AtomicBool>> = Arc::new((0..5).map(|_| AtomicBool::new(false)).collect());
    let entered = Arc::new(AtomicUsize::new(0));
    let tasks = spawn_gated(TASKS, |i| {
        let (locks, held, entered) = (locks.clone(), held.clone(), entered.clone());
        async move {
            let _guard = locks.lock(i % 5).await;
            let two_holders = held[i % 5].swap(true, Ordering::SeqCst);
            assert!(!two_holders, "two holders of one key");
            tokio::task::yield_now().await;
            held[i % 5].store(false, Ordering::SeqCst);
            entered.fetch_add(1, Ordering::SeqCst);
        }
    });
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(entered.load(Ordering::SeqCst), TASKS);
    assert_eq!(locks.len(), 0, "no per-key state outlives its use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_waiters_leave_no_state() {
    let locks = Mutex::new();
    let holder = locks.lock("k").await;
    let waiters = spawn_registered(100, |_| {
        let locks = locks.clone();
        async move {
            let _guard = locks.lock("k").await;
        }
    })
    .await;
    assert_eq!(locks.len(), 1);
    for waiter in &waiters {
        waiter.abort();
    }
    for waiter in waiters {
        let _ = waiter.await;
    }
    assert_eq!(locks.len(), 1, "the holder still holds");
    drop(holder);
    assert_eq!(locks.len(), 0);
    assert!(locks.try_lock("k").is_some());
    assert_eq!(locks.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_many_in_opposite_orders_never_deadlocks() {
    const TASKS: usize = 400;
    let locks = Mutex::new();
    let tasks = spawn_gated(TASKS, |i| {
        let locks = locks.clone();
        let keys = if i % 2 == 0 {
            ["a", "b", "c"]
        } else {
            ["c", "b", "a"]
        };
        async move {
            let guard = locks.lock_many(keys).await;
            tokio::task::yield_now().await;
            guard.keys().copied().collect::<Vec<_>>()
        }
    });
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.unwrap());
        }
        all
    })
    .await
    .expect("deadlock");
    assert!(all.iter().all(|keys| keys == &["a", "b", "c"]));
    assert_eq!(locks.len(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn lock_many_deduplicates_and_try_lock_respects_holders() {
    let locks = Mutex::new();
    let many = tokio::time::timeout(Duration::from_secs(30), locks.lock_many([2, 1, 2, 3]))
        .await
        .expect("a duplicate key was locked twice");
    assert_eq!(many.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(locks.try_lock(2).is_none());
    assert_eq!(locks.len(), 3);
    let other = locks.try_lock(4).unwrap();
    assert_eq!(*other.key(), 4);
    drop((many, other));
    assert_eq!(locks.len(), 0);
}
