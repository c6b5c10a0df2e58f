//! `Once::run` reports every call's outcome and every takeover through the `metrics` facade.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/metrics.rs"]
mod support;

use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use support::{counter, snapshot};
use tollgate::clock::{Clock, ManualClock};
use tollgate::once::{
    ClaimRequest, Failure, Fingerprint, Key, MemoryStore, OnExpired, OnUnknown, Once, Owner, Store,
};

#[test]
fn calls_are_counted_by_outcome_and_takeovers_by_namespace() {
    let recorder = DebuggingRecorder::new();
    let clock = ManualClock::new();
    let once = metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let once = Once::builder(MemoryStore::with_clock(Clock::from(clock.clone())))
                .clock(Clock::from(clock.clone()))
                .on_unknown(OnUnknown::Rerun)
                .build();
            let work = || async { Ok::<_, Failure<String>>(1_u8) };
            let key = Key::new("report", "a");
            for _ in 0..3 {
                let _ = once.run(key.clone(), Fingerprint::new("x"), work).await;
            }
            let other = once.run(key, Fingerprint::new("y"), work).await;
            assert!(other.is_err());
            // A holder that vanished, taken over once its lease has run out.
            let lease = Duration::from_millis(100);
            let req = ClaimRequest {
                key: Key::new("report", "b"),
                fingerprint: Fingerprint::new("x"),
                owner: Owner::random(),
                lease,
                on_expired: OnExpired::TakeOver,
                waiting_for: None,
            };
            once.store().claim(req).await.unwrap();
            clock.advance(lease);
            let rerun = once.run(Key::new("report", "b"), Fingerprint::new("x"), work);
            assert!(!rerun.await.unwrap().replayed);
            once
        })
    });
    drop(once);
    let snapshot = snapshot(&recorder);
    let calls = |outcome| {
        let labels = [("namespace", "report"), ("outcome", outcome)];
        counter(&snapshot, "tollgate_once_calls_total", &labels)
    };
    assert_eq!(calls("executed"), 2);
    assert_eq!(calls("replayed"), 2);
    assert_eq!(calls("mismatch"), 1);
    let takeovers = [("namespace", "report")];
    assert_eq!(
        counter(&snapshot, "tollgate_once_takeovers_total", &takeovers),
        1
    );
}
