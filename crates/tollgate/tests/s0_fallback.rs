//! S0, defect 2: FAIL_FALLBACK never executed — the fallback was set as a flag, never awaited.
//! Here a fallback is always run to completion, and the result says which path produced it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tollgate::breaker::{Breaker, BreakerConfig, SlidingWindow};
use tollgate::policy::{Policy, PolicyError, Resolution, Status};

#[derive(Debug, PartialEq)]
struct NodeDown;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_fallback_is_run_and_awaited_to_completion() {
    let policy = Policy::builder("weather").build();
    let ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    // The fallback can only finish after another task answers: it is really awaited.
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        tx.send("cached forecast").unwrap();
    });
    let counter = ran.clone();
    let resolution = policy
        .call(|| async { Err::<&str, _>(NodeDown) })
        .fallback(move |error| {
            assert_eq!(error, &PolicyError::Inner(NodeDown));
            async move {
                let value = rx.await.map_err(|_| "answer lost")?;
                counter.fetch_add(1, Ordering::SeqCst);
                Ok::<_, &str>(value)
            }
        })
        .run()
        .await;
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(resolution.status(), Status::FallbackSuccess);
    assert_eq!(resolution.status().as_str(), "fallback_success");
    assert_eq!(
        resolution,
        Resolution::FallbackSuccess {
            value: "cached forecast",
            error: PolicyError::Inner(NodeDown)
        }
    );
}

#[tokio::test]
async fn s0_failed_fallback_degrades_with_both_errors_kept() {
    let policy = Policy::builder("location").build();
    let resolution = policy
        .call(|| async { Err::<u32, _>(NodeDown) })
        .fallback(|_| async { Err::<u32, _>("cache empty") })
        .run()
        .await;
    assert_eq!(resolution.status(), Status::Failed);
    assert_eq!(
        resolution,
        Resolution::Failed {
            error: PolicyError::Inner(NodeDown),
            fallback_error: Some("cache empty")
        }
    );
}

#[tokio::test]
async fn s0_fail_open_skips_and_fail_closed_propagates() {
    let policy = Policy::builder("character").build();
    let skipped = policy
        .call(|| async { Err::<u32, _>(NodeDown) })
        .fail_open()
        .run()
        .await;
    assert_eq!(skipped.status(), Status::Skipped);
    assert_eq!(skipped.into_result(), Ok(None));
    let failed = policy
        .call(|| async { Err::<u32, _>(NodeDown) })
        .run()
        .await;
    assert_eq!(failed.status(), Status::Failed);
    assert_eq!(failed.into_result(), Err(PolicyError::Inner(NodeDown)));
    let fine = policy
        .call(|| async { Ok::<_, NodeDown>(5) })
        .fail_open()
        .run()
        .await;
    assert_eq!(
        (fine.status(), fine.into_result()),
        (Status::Success, Ok(Some(5)))
    );
}

#[tokio::test]
async fn s0_fallback_runs_when_the_breaker_rejects_and_the_node_is_not_called() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(1))
        .minimum_calls(1)
        .wait_in_open(Duration::from_secs(60));
    let breaker = Arc::new(Breaker::new("rag", config).unwrap());
    breaker.try_acquire().unwrap().failure();
    let policy = Policy::builder("rag").breaker(breaker).build();
    let node_calls = AtomicUsize::new(0);
    let resolution = policy
        .call(|| {
            node_calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, NodeDown>("live") }
        })
        .fallback(|error| {
            let rejected = matches!(error, PolicyError::Rejected(_));
            async move {
                if rejected {
                    Ok("fallback")
                } else {
                    Err("wrong error")
                }
            }
        })
        .run()
        .await;
    assert_eq!(node_calls.load(Ordering::SeqCst), 0);
    assert_eq!(resolution.value(), Some(&"fallback"));
    assert_eq!(resolution.status(), Status::FallbackSuccess);
}
