//! `Once::run` on the in-memory store: Wait-mode waiters sharing one execution, the wait
//! deadline, cancellation. (Replay, reject, mismatch and failures run on every backend from
//! the testkit.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/once.rs"]
mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use support::{PaidApi, report, spawn_report};
use tokio::sync::{Barrier, watch};
use tollgate::once::{Error, MemoryStore, OnInProgress, Once};
use tollgate_testkit::Counting;

const WAITERS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_mode_waiters_in_one_process_share_the_single_execution() {
    let wait = OnInProgress::Wait {
        deadline: Duration::from_secs(30),
    };
    let once = Once::builder(Counting::new(MemoryStore::new()))
        .on_in_progress(wait)
        .build();
    let api = PaidApi::closed();
    // Callers whose call has been polled once: in Wait mode its first poll takes its turn in
    // the process's coalescing (it leads the execution or joins the one in flight).
    let entered = Arc::new(watch::Sender::new(0_usize));
    let start = Arc::new(Barrier::new(WAITERS + 1));
    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (once, api, start, entered) =
                (once.clone(), api.clone(), start.clone(), entered.clone());
            tokio::spawn(async move {
                start.wait().await;
                let (key, fp) = report();
                let mut call = pin!(once.run(key, fp, api.call(Ok(7_u32))));
                let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
                assert!(first.is_pending(), "no call ends before the paid call does");
                entered.send_modify(|n| *n += 1);
                call.await
            })
        })
        .collect();
    start.wait().await;
    // The paid call is held; release it only once every other caller waits on its execution.
    let mut all = entered.subscribe();
    let all_entered =
        tokio::time::timeout(Duration::from_secs(30), all.wait_for(|n| *n == WAITERS));
    assert!(
        matches!(all_entered.await, Ok(Ok(_))),
        "every caller takes its turn: {} did",
        *entered.borrow()
    );
    api.started(1).await;
    assert_eq!(api.calls(), 1);
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
    // A caller that came after the execution had left the coalescing would have led a second
    // one and asked the store (which replays): every other caller joined the one in flight.
    assert_eq!(once.store().claims(), 1, "only the leader asked the store");
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
    // The work finishes on its own and stores its result. Until its execution has also left
    // this process's coalescing (just after the store write), a new call is still turned away
    // as a conflict; then it replays.
    // Real time: this test's tokio clock is paused and does not move while the loop yields.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let replay = loop {
        match once.run(key.clone(), fp.clone(), api.call(Ok(0_u16))).await {
            Err(Error::Conflict) => {
                let now = std::time::Instant::now();
                assert!(now < deadline, "the execution never left the coalescing");
                tokio::task::yield_now().await;
            }
            other => break other.unwrap(),
        }
    };
    assert_eq!((replay.value, replay.replayed), (9, true));
    assert_eq!(api.calls(), 1, "paid once although its caller went away");
}

#[tokio::test]
async fn a_result_that_cannot_be_stored_frees_the_key() {
    use std::collections::HashMap;
    let once = Once::new(MemoryStore::new());
    let (key, fp) = report();
    // JSON object keys must be strings: this map serializes to an error.
    let unstorable = HashMap::from([((1_u8, 2_u8), 3_u8)]);
    let api = PaidApi::open();
    let first = once.run(key.clone(), fp.clone(), api.call(Ok(unstorable)));
    assert!(matches!(first.await, Err(Error::Codec(_))));
    let second = once.run(key, fp, api.call(Ok(4_u8))).await.unwrap();
    assert_eq!((second.value, second.replayed, api.calls()), (4, false, 2));
}
