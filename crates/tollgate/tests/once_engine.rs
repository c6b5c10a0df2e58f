//! `Once::run` policies on the in-memory store: conflict or wait, replay or reject, failures,
//! mismatch, cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "once_support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{PaidApi, report, spawn_report};
use tokio::sync::Barrier;
use tollgate::once::{
    Error, Failure, Fingerprint, MemoryStore, OnCompleted, OnInProgress, Once, Output, RecordState,
    Store,
};

const WAITERS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_mode_waiters_in_one_process_share_the_single_execution() {
    let wait = OnInProgress::Wait {
        deadline: Duration::from_secs(30),
    };
    let once = Once::builder(MemoryStore::new())
        .on_in_progress(wait)
        .build();
    let api = PaidApi::closed();
    let start = Arc::new(Barrier::new(WAITERS + 1));
    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (once, api, start) = (once.clone(), api.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let (key, fp) = report();
                once.run(key, fp, api.call(Ok(7_u32))).await
            })
        })
        .collect();
    start.wait().await;
    api.started(1).await;
    api.release();
    let mut fresh = 0;
    for task in tasks {
        let out = task.await.unwrap().unwrap();
        assert_eq!(out.value, 7);
        fresh += usize::from(!out.replayed);
    }
    assert_eq!(api.calls(), 1, "the paid API ran once");
    assert_eq!(
        fresh, 1,
        "one caller ran it, the others received its result"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_mode_polls_a_holder_in_another_engine_until_it_completes() {
    let store = MemoryStore::new();
    let holder = Once::new(store.clone());
    let wait = OnInProgress::Wait {
        deadline: Duration::from_secs(5),
    };
    let waiter = Once::builder(store.clone()).on_in_progress(wait).build();
    let api = PaidApi::closed();
    let held = spawn_report(&holder, &api, 1_u8);
    api.started(1).await;
    let waiting = spawn_report(&waiter, &api, 2_u8);
    tokio::time::sleep(Duration::from_secs(1)).await; // the waiter polls meanwhile
    api.release();
    let expected = Output {
        value: 1,
        replayed: true,
    };
    assert_eq!(waiting.await.unwrap(), Ok(expected));
    assert!(!held.await.unwrap().unwrap().replayed);
    assert_eq!(api.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn wait_mode_gives_up_at_the_deadline() {
    let store = MemoryStore::new();
    let holder = Once::new(store.clone());
    let wait = OnInProgress::Wait {
        deadline: Duration::from_secs(2),
    };
    let waiter = Once::builder(store).on_in_progress(wait).build();
    let api = PaidApi::closed();
    let (key, fp) = report();
    let _held = spawn_report(&holder, &api, 1_u8);
    api.started(1).await;
    let started = tokio::time::Instant::now();
    let outcome = waiter.run(key, fp, api.call(Ok(2_u8))).await;
    assert_eq!(outcome, Err(Error::WaitTimedOut));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn completed_key_is_replayed_or_rejected_by_option() {
    let store = MemoryStore::new();
    let api = PaidApi::open();
    let (key, fp) = report();
    let first = Once::new(store.clone());
    let ran = first.run(key.clone(), fp.clone(), api.call(Ok("r".to_string())));
    assert!(!ran.await.unwrap().replayed);
    let replay = first.run(key.clone(), fp.clone(), api.call(Ok("other".to_string())));
    let expected = Output {
        value: "r".to_string(),
        replayed: true,
    };
    assert_eq!(replay.await, Ok(expected));
    let strict = Once::builder(store)
        .on_completed(OnCompleted::Reject)
        .build();
    let rejected = strict.run(key, fp, api.call(Ok("other".to_string())));
    assert_eq!(rejected.await, Err(Error::AlreadyDone));
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn a_different_fingerprint_is_a_mismatch() {
    let once = Once::new(MemoryStore::new());
    let api = PaidApi::open();
    let (key, fp) = report();
    let first = once.run(key.clone(), fp, api.call(Ok(1_u8))).await.unwrap();
    assert!(!first.replayed);
    let other = once.run(key, Fingerprint::new("other letters"), api.call(Ok(2_u8)));
    assert_eq!(other.await, Err(Error::Mismatch));
    assert_eq!(api.calls(), 1);
}

#[tokio::test]
async fn a_retryable_failure_frees_the_key_and_a_permanent_one_is_replayed() {
    let once = Once::new(MemoryStore::new());
    let api = PaidApi::open();
    let (key, fp) = report();
    let busy = Failure::retryable("503".to_string());
    let first = once.run(key.clone(), fp.clone(), api.call::<u8>(Err(busy.clone())));
    assert_eq!(first.await, Err(Error::Failed(busy)));
    let bad = Failure::permanent("400".to_string());
    let second = once.run(key.clone(), fp.clone(), api.call::<u8>(Err(bad.clone())));
    assert_eq!(second.await, Err(Error::Failed(bad.clone())));
    let third = once.run(key.clone(), fp, api.call(Ok(3_u8)));
    assert_eq!(third.await, Err(Error::Failed(bad)), "replayed, not re-run");
    assert_eq!(api.calls(), 2);
    let record = once.store().read(&key).await.unwrap().unwrap();
    assert_eq!(record.fence.0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_caller_does_not_cancel_the_paid_work() {
    let once = Once::new(MemoryStore::new());
    let api = PaidApi::closed();
    let (key, fp) = report();
    let caller = tokio::spawn({
        let (once, call) = (once.clone(), api.call(Ok(9_u16)));
        let (key, fp) = (key.clone(), fp.clone());
        async move { once.run(key, fp, call).await }
    });
    api.started(1).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    api.release();
    // The work finishes on its own and stores its result; wait for the record to say so.
    loop {
        let record = once.store().read(&key).await.unwrap().unwrap();
        if matches!(record.state, RecordState::Completed { .. }) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let replay = once.run(key, fp, api.call(Ok(0_u16))).await.unwrap();
    assert_eq!((replay.value, replay.replayed), (9, true));
    assert_eq!(api.calls(), 1, "paid once although its caller went away");
}
