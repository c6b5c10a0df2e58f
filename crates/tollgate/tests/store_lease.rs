//! The lease keeper of `tollgate::store::lease` on tokio's paused clock: renewals on schedule,
//! a lease lost to a fenced renewal or to a whole lease without one, and a signal that fires
//! once for every observer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tollgate::store::{LeaseTiming, LostReason, Settle, StoreError, StoreErrorKind, lease};

const LEASE: Duration = Duration::from_millis(100);

fn timing() -> LeaseTiming {
    LeaseTiming::new(LEASE, LEASE / 4)
}

#[tokio::test(start_paused = true)]
async fn renewals_keep_the_lease_and_never_fire_the_signal() {
    let renewals = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&renewals);
    let (keeper, lost) = lease::keep("k", timing(), Instant::now(), move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, StoreError>(Settle::Accepted) }
    });
    let outcome = tokio::time::timeout(LEASE * 10 + LEASE / 8, keeper).await;
    assert!(outcome.is_err(), "still held after ten lease lengths");
    assert_eq!(
        renewals.load(Ordering::SeqCst),
        40,
        "one renewal per 25 ms for 1 s"
    );
    assert_eq!(lost.reason(), None);
}

#[tokio::test(start_paused = true)]
async fn a_fenced_renewal_loses_the_lease_at_once_and_every_observer_is_told() {
    let start = Instant::now();
    let (keeper, lost) = lease::keep("k", timing(), start, || async {
        Ok::<_, StoreError>(Settle::Fenced)
    });
    let (a, b) = (lost.clone(), lost);
    let (reason, seen_a, seen_b) = tokio::join!(keeper, a.wait(), b.wait());
    assert_eq!(
        (reason, seen_a, seen_b),
        (LostReason::Fenced, LostReason::Fenced, LostReason::Fenced)
    );
    assert_eq!(start.elapsed(), LEASE / 4, "at the first renewal");
    assert_eq!(a.reason(), Some(LostReason::Fenced));
}

#[tokio::test(start_paused = true)]
async fn failing_renewals_lose_the_lease_exactly_when_it_runs_out() {
    let start = Instant::now();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let (keeper, lost) = lease::keep("k", timing(), start, move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<Settle, _>(StoreError::msg(StoreErrorKind::Unavailable, "refused")) }
    });
    assert_eq!(keeper.await, LostReason::Expired);
    assert_eq!(
        start.elapsed(),
        LEASE,
        "never believes in a lease past its end"
    );
    assert_eq!(lost.reason(), Some(LostReason::Expired));
    // First try at 25 ms, then every 6.25 ms — 7 ms on tokio's 1 ms timer — before 100 ms.
    assert_eq!(attempts.load(Ordering::SeqCst), 11);
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_hangs_past_the_lease_loses_it() {
    let start = Instant::now();
    let (keeper, _lost) = lease::keep("k", timing(), start, std::future::pending);
    assert_eq!(keeper.await, LostReason::Expired);
    assert_eq!(start.elapsed(), LEASE);
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_ends_normally_never_fires() {
    let (keeper, lost) = lease::keep("k", timing(), Instant::now(), || async {
        Ok::<_, StoreError>(Settle::Accepted)
    });
    drop(keeper); // the protected work finished
    let waited = tokio::time::timeout(LEASE * 10, lost.wait()).await;
    assert!(waited.is_err(), "the signal pends forever");
    assert_eq!(lost.reason(), None);
}

#[test]
fn renewal_is_kept_at_most_half_the_lease() {
    let t = LeaseTiming::new(Duration::from_secs(10), Duration::from_secs(30));
    assert_eq!(
        (t.lease(), t.renew_every()),
        (Duration::from_secs(10), Duration::from_secs(5))
    );
}
