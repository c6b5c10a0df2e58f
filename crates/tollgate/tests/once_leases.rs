//! Leases on the in-memory store, on tokio's paused clock: renewal, expiry, takeover with a
//! higher fence, fenced late holders, unknown outcomes, retention and purge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/once.rs"]
mod support;

use std::time::Duration;

use support::{PaidApi, report, spawn_report};
use tollgate::clock::{Clock, ManualClock};
use tollgate::once::{
    ClaimOutcome, ClaimRequest, Error, MemoryStore, OnExpired, OnUnknown, Once, Owner, RecordState,
    Store, Token,
};
use tollgate_testkit::Unreachable;

const LEASE: Duration = Duration::from_millis(100);

/// A holder that claims the report key and then vanishes (a crashed process).
async fn crashed_holder<S: Store>(once: &Once<S>) -> Token {
    let (key, fingerprint) = report();
    let req = ClaimRequest {
        key,
        fingerprint,
        owner: Owner::random(),
        lease: LEASE,
        on_expired: OnExpired::TakeOver,
        waiting_for: None,
    };
    match once.store().claim(req).await.unwrap() {
        ClaimOutcome::Acquired { token, .. } => token,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

async fn record_state<S: Store>(once: &Once<S>) -> (u64, RecordState) {
    let record = once.store().read(&report().0).await.unwrap().unwrap();
    (record.fence.0, record.state)
}

#[tokio::test(start_paused = true)]
async fn renewal_keeps_a_long_call_leased_past_many_lease_lengths() {
    let store = MemoryStore::new();
    let holder = Once::builder(store.clone()).lease(LEASE, LEASE / 4).build();
    let rival = Once::builder(store).on_unknown(OnUnknown::Rerun).build();
    let api = PaidApi::closed();
    let held = spawn_report(&holder, &api, 1_u8);
    api.started(1).await;
    tokio::time::sleep(LEASE * 10).await;
    let rejected = spawn_report(&rival, &api, 2_u8).await.unwrap();
    assert_eq!(
        rejected,
        Err(Error::Conflict),
        "the renewed lease is still live"
    );
    api.release();
    assert!(!held.await.unwrap().unwrap().replayed);
    assert_eq!(api.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn renewal_goes_on_while_the_leading_call_is_not_polled() {
    // The caller's future is polled until the paid call started, then parked (a buffered
    // stream nobody drives): the work and its renewals run in a task of their own, so the
    // lease stays live and a rival is refused instead of taking over and paying again.
    let store = MemoryStore::new();
    let holder = Once::builder(store.clone()).lease(LEASE, LEASE / 4).build();
    let rival = Once::builder(store).on_unknown(OnUnknown::Rerun).build();
    let api = PaidApi::closed();
    let (key, fingerprint) = report();
    let mut parked = Box::pin(holder.run(key, fingerprint, api.call(Ok(1_u8))));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(parked.as_mut().poll(cx))).await;
    assert!(first.is_pending());
    api.started(1).await;
    tokio::time::sleep(LEASE * 10).await;
    // A rival that took over would start the paid call again and wait on the closed API.
    let rejected = tokio::time::timeout(LEASE, spawn_report(&rival, &api, 2_u8)).await;
    let rejected = rejected.expect("the rival took the lease over: it was not renewed");
    assert_eq!(rejected.unwrap(), Err(Error::Conflict));
    api.release();
    assert!(!parked.await.unwrap().replayed);
    assert_eq!(api.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_crashed_holder_is_taken_over_with_a_higher_fence_and_its_completion_fenced() {
    let once = Once::builder(MemoryStore::new())
        .lease(LEASE, LEASE / 4)
        .on_unknown(OnUnknown::Rerun)
        .build();
    let crashed = crashed_holder(&once).await;
    let api = PaidApi::open();
    let early = spawn_report(&once, &api, 1_u8).await.unwrap();
    assert_eq!(early, Err(Error::Conflict), "lease still live");
    tokio::time::sleep(LEASE).await;
    let rerun = spawn_report(&once, &api, 2_u8).await.unwrap().unwrap();
    assert_eq!((rerun.value, rerun.replayed), (2, false));
    let (fence, state) = record_state(&once).await;
    assert_eq!(fence, crashed.fence.0 + 1);
    assert!(matches!(state, RecordState::Completed { .. }));
    let key = report().0;
    let late = once.store().complete(&key, crashed, b"3".to_vec(), LEASE);
    assert_eq!(late.await.unwrap(), tollgate::once::Settle::Fenced);
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_loses_its_lease_is_told_fenced_and_its_work_dropped() {
    // The store's clock jumps past the lease between two renewals (a paused VM, a stalled
    // holder): the rival takes over, the holder's next renewal is rejected.
    let store_clock = ManualClock::new();
    let store = MemoryStore::with_clock(Clock::Manual(store_clock.clone()));
    let holder = Once::builder(store.clone()).lease(LEASE, LEASE / 4).build();
    let rival = Once::builder(store)
        .lease(LEASE, LEASE / 4)
        .on_unknown(OnUnknown::Rerun)
        .build();
    let stuck = PaidApi::closed(); // never released: only the lost lease ends this call
    let held = spawn_report(&holder, &stuck, 1_u8);
    stuck.started(1).await;
    store_clock.advance(LEASE);
    let rerun = spawn_report(&rival, &PaidApi::open(), 2_u8).await.unwrap();
    assert_eq!(rerun.unwrap().value, 2);
    assert_eq!(held.await.unwrap(), Err(Error::Fenced));
    assert_eq!(record_state(&rival).await.0, 2);
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_renewals_fail_for_a_whole_lease_stops_and_is_told_fenced() {
    let store = Unreachable::new(MemoryStore::new());
    let holder = Once::builder(store.clone()).lease(LEASE, LEASE / 4).build();
    let stuck = PaidApi::closed();
    let held = spawn_report(&holder, &stuck, 1_u8);
    stuck.started(1).await;
    store.cut();
    let started = tokio::time::Instant::now();
    assert_eq!(held.await.unwrap(), Err(Error::Fenced));
    let stopped_after = started.elapsed();
    assert_eq!(
        stopped_after, LEASE,
        "stopped when the lease ran out unrenewed"
    );
    assert!(
        store.renewals_refused() >= 2,
        "renewal was retried before giving up"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_surfaced_by_default_and_rerun_on_request() {
    let store = MemoryStore::new();
    let careful = Once::builder(store.clone()).lease(LEASE, LEASE / 4).build();
    let crashed = crashed_holder(&careful).await;
    tokio::time::sleep(LEASE).await;
    let api = PaidApi::open();
    for _ in 0..2 {
        let surfaced = spawn_report(&careful, &api, 1_u8).await.unwrap();
        assert_eq!(surfaced, Err(Error::OutcomeUnknown));
    }
    assert_eq!(api.calls(), 0, "never paid again silently");
    let unknown = RecordState::Unknown {
        owner: crashed.owner,
    };
    assert_eq!(record_state(&careful).await, (1, unknown));
    let decided = Once::builder(store).on_unknown(OnUnknown::Rerun).build();
    let rerun = spawn_report(&decided, &api, 2_u8).await.unwrap().unwrap();
    assert_eq!((rerun.value, api.calls()), (2, 1));
    assert_eq!(record_state(&decided).await.0, 2);
}

#[tokio::test(start_paused = true)]
async fn completed_records_expire_after_retention_and_purge_removes_them() {
    let retention = Duration::from_secs(60);
    let store = MemoryStore::new();
    let once = Once::builder(store.clone()).retention(retention).build();
    let api = PaidApi::open();
    let first = spawn_report(&once, &api, 1_u8).await.unwrap().unwrap();
    assert!(!first.replayed);
    tokio::time::sleep(retention - Duration::from_millis(1)).await;
    assert_eq!(once.purge().await.unwrap(), 0);
    let replay = spawn_report(&once, &api, 2_u8).await.unwrap().unwrap();
    assert_eq!((replay.value, replay.replayed), (1, true));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(once.purge().await.unwrap(), 1);
    assert!(store.is_empty());
    let again = spawn_report(&once, &api, 3_u8).await.unwrap().unwrap();
    assert_eq!((again.value, again.replayed, api.calls()), (3, false, 2));
}
