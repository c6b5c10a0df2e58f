//! The bulkhead under contention: never more than its limit inside, no waiter lost.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use tollgate::policy::Bulkhead;

const TASKS: usize = 1_000;
const LIMIT: usize = 10;
// The tasks go through in full waves of `LIMIT`: the last wave, too, meets at the barrier.
const _: () = assert!(TASKS.is_multiple_of(LIMIT));

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_more_than_the_limit_inside_and_every_waiter_gets_a_slot() {
    let bulkhead = Bulkhead::new(LIMIT, Duration::from_secs(600));
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let waves = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(TASKS));
    // Inside its slot a task waits until `LIMIT` tasks are inside together: a bulkhead that
    // lets fewer in at once never fills a wave (its tasks time out), one that lets more in
    // shows a peak above the limit. A wave's tasks leave together and free their slots for
    // the next `LIMIT`, so a right bulkhead never deadlocks here.
    let wave = Arc::new(Barrier::new(LIMIT));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (bulkhead, inside, peak, admitted, waves, start, wave) = (
                bulkhead.clone(),
                inside.clone(),
                peak.clone(),
                admitted.clone(),
                waves.clone(),
                start.clone(),
                wave.clone(),
            );
            tokio::spawn(async move {
                start.wait().await;
                let _slot = bulkhead.acquire().await.expect("a slot within 10 minutes");
                admitted.fetch_add(1, Ordering::SeqCst);
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let met = tokio::time::timeout(Duration::from_secs(30), wave.wait()).await;
                if met.expect("LIMIT tasks inside at once").is_leader() {
                    waves.fetch_add(1, Ordering::SeqCst);
                }
                inside.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    // A lost wake-up would leave a task waiting for ten minutes: bound the whole test instead.
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("no waiter lost");
    assert_eq!(peak.load(Ordering::SeqCst), LIMIT);
    assert_eq!(admitted.load(Ordering::SeqCst), TASKS);
    assert_eq!(waves.load(Ordering::SeqCst), TASKS / LIMIT);
    assert_eq!(inside.load(Ordering::SeqCst), 0);
    assert_eq!(bulkhead.available(), LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_wait_exactly_the_limit_gets_in() {
    let bulkhead = Bulkhead::new(LIMIT, Duration::ZERO);
    let start = Arc::new(Barrier::new(TASKS));
    let asked = Arc::new(Barrier::new(TASKS));
    let admitted = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (bulkhead, start, asked, admitted) = (
                bulkhead.clone(),
                start.clone(),
                asked.clone(),
                admitted.clone(),
            );
            tokio::spawn(async move {
                start.wait().await;
                let slot = bulkhead.acquire().await.ok();
                if slot.is_some() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                }
                asked.wait().await; // hold the slots until everyone has asked
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(admitted.load(Ordering::SeqCst), LIMIT);
    assert_eq!(bulkhead.available(), LIMIT);
}

/// A handle whose `clone` panics.
struct CloneBomb(Bulkhead);

impl std::borrow::Borrow<Bulkhead> for CloneBomb {
    fn borrow(&self) -> &Bulkhead {
        &self.0
    }
}

impl Clone for CloneBomb {
    fn clone(&self) -> Self {
        panic!("the clone panics")
    }
}

#[test]
fn a_slot_taken_for_a_handle_whose_clone_panics_is_given_back() {
    use tollgate::policy::BulkheadGuard;
    let handle = CloneBomb(Bulkhead::new(1, Duration::ZERO));
    let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        BulkheadGuard::try_acquire(&handle)
    }));
    assert!(taken.is_err(), "the clone panicked");
    assert_eq!(handle.0.available(), 1, "the slot was given back");
    let slot = BulkheadGuard::try_hold(handle).ok().unwrap();
    assert_eq!(slot.handle().0.available(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_wait_of_duration_max_waits_until_a_slot_is_freed() {
    let bulkhead = Bulkhead::new(1, Duration::MAX);
    let held = bulkhead.acquire_owned().await.unwrap();
    let waiter = {
        let bulkhead = bulkhead.clone();
        tokio::spawn(async move { bulkhead.acquire_owned().await.map(drop) })
    };
    // A year of (paused) time passes: still waiting, not turned away, not panicked.
    tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
    assert!(!waiter.is_finished());
    drop(held);
    assert_eq!(waiter.await.unwrap(), Ok(()));
    assert_eq!(bulkhead.available(), 1);
}
