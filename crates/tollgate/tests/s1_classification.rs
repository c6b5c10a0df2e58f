//! S1: errors are classified by type or code, never by message text. The original code decided
//! by `"FailForbidden" in msg`; here two errors with the very same message are told apart by
//! their variants, and a message that mentions another error's name changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate::breaker::{
    Breaker, BreakerConfig, BreakerOutcome, ByErrorKind, Outcome, SlidingWindow, State,
};
use tollgate::policy::{Backoff, Jitter, Policy, Retry, RetryDecision, Status};

#[derive(Debug, Clone, Copy, PartialEq)]
enum ClusterError {
    /// The caller is not allowed: our fault, not the cluster's.
    Forbidden,
    /// The cluster is unreachable: a real failure, worth a retry.
    Unavailable,
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately the same text for both: text must not decide anything.
        f.write_str("FailForbidden: request failed")
    }
}

impl BreakerOutcome for ClusterError {
    fn breaker_outcome(&self) -> Outcome {
        match self {
            ClusterError::Forbidden => Outcome::Ignored,
            ClusterError::Unavailable => Outcome::Failure,
        }
    }
}

fn breaker() -> Breaker {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(4))
        .minimum_calls(4)
        .failure_rate_threshold(100.0);
    Breaker::new("cluster", config).unwrap()
}

#[tokio::test]
async fn s1_errors_with_identical_text_are_classified_by_variant() {
    assert_eq!(
        ClusterError::Forbidden.to_string(),
        ClusterError::Unavailable.to_string()
    );
    let b = breaker();
    for _ in 0..10 {
        let _ = b
            .call_classified(async { Err::<(), _>(ClusterError::Forbidden) }, ByErrorKind)
            .await;
    }
    assert_eq!(
        b.totals().calls,
        0,
        "forbidden calls are not the cluster's failures"
    );
    assert_eq!(b.state(), State::Closed);
    for _ in 0..4 {
        let _ = b
            .call_classified(
                async { Err::<(), _>(ClusterError::Unavailable) },
                ByErrorKind,
            )
            .await;
    }
    assert_eq!(b.totals().failures, 4);
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn s1_retry_decisions_are_typed_too() {
    let retry = Retry::new(
        5,
        Backoff::exponential(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(10),
        )
        .jitter(Jitter::None),
    );
    let policy = Policy::builder("cluster").retry(retry).build();
    let by_variant = |e: &ClusterError| match e {
        ClusterError::Forbidden => RetryDecision::Stop,
        ClusterError::Unavailable => RetryDecision::Retry,
    };
    for (error, expected_attempts) in [(ClusterError::Forbidden, 1), (ClusterError::Unavailable, 5)]
    {
        let attempts = AtomicUsize::new(0);
        let resolution = policy
            .call(|| {
                attempts.fetch_add(1, Ordering::SeqCst);
                async move { Err::<(), _>(error) }
            })
            .retry_if(by_variant)
            .run()
            .await;
        assert_eq!(resolution.status(), Status::Failed);
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            expected_attempts,
            "{error:?}"
        );
    }
}
