//! Timeout, retry, bulkhead and breaker composed by a policy, on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Barrier, Semaphore};
use tokio::time::Instant;
use tollgate::breaker::{Breaker, BreakerConfig, SlidingWindow, State};
use tollgate::policy::{
    Backoff, Bulkhead, Jitter, Policy, PolicyError, Retry, RetryBudget, RetryDecision, Status,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn retry(attempts: u32) -> Retry {
    Retry::new(
        attempts,
        Backoff::exponential(MS(100), MS(1_000)).jitter(Jitter::None),
    )
}

/// Calls `policy` with an operation that fails `failures` times, then succeeds; returns the
/// resolution status and the instants at which each attempt started.
async fn flaky(policy: &Policy, failures: usize) -> (Status, Vec<Instant>) {
    let starts = Mutex::new(Vec::new());
    let status = policy
        .call(|| {
            let mut starts = starts.lock().unwrap();
            starts.push(Instant::now());
            let fail = starts.len() <= failures;
            async move { if fail { Err("flaky") } else { Ok(()) } }
        })
        .run()
        .await
        .status();
    (status, starts.into_inner().unwrap())
}

fn gaps(starts: &[Instant]) -> Vec<Duration> {
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_and_stop_at_max_attempts() {
    let policy = Policy::builder("p").retry(retry(4)).build();
    let (status, starts) = flaky(&policy, 2).await;
    assert_eq!((status, starts.len()), (Status::Success, 3));
    assert_eq!(gaps(&starts), [MS(100), MS(200)]);
    let (status, starts) = flaky(&policy, 10).await;
    assert_eq!((status, starts.len()), (Status::Failed, 4));
    assert_eq!(gaps(&starts), [MS(100), MS(200), MS(400)]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_hint_is_honoured() {
    let policy = Policy::builder("p").retry(retry(2)).build();
    let starts = Mutex::new(Vec::new());
    let _ = policy
        .call(|| {
            starts.lock().unwrap().push(Instant::now());
            async { Err::<(), _>(Duration::from_secs(3)) }
        })
        .retry_if(|hint: &Duration| RetryDecision::RetryAfter(*hint))
        .run()
        .await;
    assert_eq!(
        gaps(&starts.into_inner().unwrap()),
        [Duration::from_secs(3)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_shared_budget_caps_retries_across_calls() {
    let budget = Arc::new(RetryBudget::new(0.1, 2));
    let policy = Policy::builder("p")
        .retry(retry(3).budget(budget.clone()))
        .build();
    let mut attempts = 0;
    for _ in 0..10 {
        attempts += flaky(&policy, usize::MAX).await.1.len();
    }
    // 10 first attempts; retries: 2 in reserve + 10 × 0.1 deposited = 3.
    assert_eq!(attempts, 13);
    assert_eq!(budget.available(), 0);
}

#[tokio::test(start_paused = true)]
async fn timeouts_cancel_the_attempt_count_as_failures_and_are_retried() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(10))
        .minimum_calls(10);
    let breaker = Arc::new(Breaker::new("slow", config).unwrap());
    let policy = Policy::builder("p")
        .timeout(MS(500))
        .retry(retry(3))
        .breaker(breaker.clone())
        .build();
    let started = Instant::now();
    let resolution = policy
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, &str>(())
        })
        .run()
        .await;
    assert!(matches!(
        resolution.into_result(),
        Err(PolicyError::Timeout(elapsed)) if elapsed.after() == MS(500)
    ));
    // 3 attempts of 500 ms, and backoffs of 100 and 200 ms between them.
    assert_eq!(started.elapsed(), MS(1_800));
    assert_eq!(breaker.totals().failures, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulkhead_rejections_are_not_counted_by_the_breaker_nor_retried() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(10))
        .minimum_calls(1);
    let breaker = Arc::new(Breaker::new("dep", config).unwrap());
    let policy = Arc::new(
        Policy::builder("p")
            .bulkhead(Bulkhead::new(2, Duration::ZERO))
            .breaker(breaker.clone())
            .retry(retry(5))
            .build(),
    );
    // A semaphore, not `Notify::notify_waiters`: a holder that reaches its wait after the
    // release still finds its permit (`notify_waiters` wakes only who already waits).
    let release = Arc::new(Semaphore::new(0));
    let inside = Arc::new(Barrier::new(3));
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let (policy, release, inside) = (policy.clone(), release.clone(), inside.clone());
            tokio::spawn(async move {
                policy
                    .call(|| {
                        let (release, inside) = (release.clone(), inside.clone());
                        async move {
                            inside.wait().await;
                            let _go = release.acquire().await;
                            Ok::<_, &str>(())
                        }
                    })
                    .run()
                    .await
                    .status()
            })
        })
        .collect();
    inside.wait().await; // both slots are taken
    let calls = AtomicUsize::new(0);
    let rejected = policy
        .call(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, &str>(()) }
        })
        .run()
        .await;
    assert!(
        matches!(rejected.error(), Some(PolicyError::BulkheadFull(full)) if full.max_concurrent() == 2)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "not run, not retried");
    assert_eq!(breaker.totals().calls, 0);
    release.add_permits(2);
    for h in holders {
        assert_eq!(h.await.unwrap(), Status::Success);
    }
    assert_eq!(breaker.totals().calls, 2);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn bulkhead_waits_up_to_its_limit_for_a_slot() {
    let bulkhead = Bulkhead::new(1, MS(50));
    let held = bulkhead.acquire().await.unwrap();
    let started = Instant::now();
    assert!(bulkhead.acquire().await.is_err());
    assert_eq!(started.elapsed(), MS(50));
    let waiter = async { bulkhead.acquire().await.map(|_| Instant::now()) };
    let releaser = async {
        tokio::time::sleep(MS(20)).await;
        drop(held);
    };
    let (acquired_at, ()) = tokio::join!(waiter, releaser);
    assert_eq!(acquired_at.unwrap() - started, MS(70));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_frees_its_bulkhead_slot_and_breaker_trial() {
    let breaker = Arc::new(Breaker::new("dep", BreakerConfig::default()).unwrap());
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let policy = Policy::builder("p")
        .bulkhead(bulkhead.clone())
        .breaker(breaker.clone())
        .build();
    let call = policy.call(std::future::pending::<Result<(), ()>>).run();
    assert!(tokio::time::timeout(MS(10), call).await.is_err());
    assert_eq!(bulkhead.available(), 1);
    assert_eq!(breaker.totals().calls, 0);
}
