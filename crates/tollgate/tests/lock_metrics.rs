//! `tollgate::lock` reports acquisitions, contention and lost leases through `metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/metrics.rs"]
mod support;

use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use support::{counter, snapshot};
use tollgate::clock::{Clock, ManualClock};
use tollgate::lock::{LockStore, Locks, MemoryLockStore, Wait};
use tollgate::store::{Key, LostReason, Owner};

#[test]
fn acquisitions_contention_and_lost_leases_are_counted() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let lease = Duration::from_secs(3);
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let clock = ManualClock::new();
            let store = MemoryLockStore::with_clock(Clock::Manual(clock.clone()));
            let (a, b) = (Locks::new(store.clone()), Locks::new(store.clone()));
            let key = Key::new("wallet", "1");
            let held = a.acquire(key.clone(), lease, Wait::Fail).await.unwrap();
            let local = a.acquire(key.clone(), lease, Wait::Fail).await;
            assert!(local.is_err(), "held by a task of this process");
            let soon = tokio::time::Instant::now() + Duration::from_millis(50);
            let remote = b.acquire(key.clone(), lease, Wait::Until(soon)).await;
            assert!(remote.is_err(), "held by another process");
            clock.advance(lease);
            let taken = store.acquire(&key, Owner(9), lease).await.unwrap();
            assert!(matches!(
                taken,
                tollgate::lock::Acquisition::Acquired { .. }
            ));
            assert_eq!(held.lost().wait().await, LostReason::Fenced);
            // The keeper task counts the loss right after it fires the signal.
            tokio::task::yield_now().await;
        });
    });
    let snapshot = snapshot(&recorder);
    let acquisitions = |outcome| {
        let labels = [("namespace", "wallet"), ("outcome", outcome)];
        counter(&snapshot, "tollgate_lock_acquisitions_total", &labels)
    };
    assert_eq!(acquisitions("acquired"), 1);
    assert_eq!(acquisitions("held"), 1);
    assert_eq!(acquisitions("timed_out"), 1);
    let contended = [("namespace", "wallet")];
    assert_eq!(
        counter(&snapshot, "tollgate_lock_contended_total", &contended),
        2
    );
    let lost = [("namespace", "wallet"), ("reason", "fenced")];
    assert_eq!(counter(&snapshot, "tollgate_lock_lost_total", &lost), 1);
}
