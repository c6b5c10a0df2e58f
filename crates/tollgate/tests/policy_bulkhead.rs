//! The bulkhead under contention: never more than its limit inside, no waiter lost.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use tollgate::policy::Bulkhead;

const TASKS: usize = 1_000;
const LIMIT: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_more_than_the_limit_inside_and_every_waiter_gets_a_slot() {
    let bulkhead = Bulkhead::new(LIMIT, Duration::from_secs(600));
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (bulkhead, inside, peak, start) = (
                bulkhead.clone(),
                inside.clone(),
                peak.clone(),
                start.clone(),
            );
            tokio::spawn(async move {
                start.wait().await;
                let _slot = bulkhead.acquire().await.expect("a slot within 10 minutes");
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
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
    assert!(peak.load(Ordering::SeqCst) <= LIMIT);
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
