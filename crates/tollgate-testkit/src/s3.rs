//! S3, "pay once", at library level: 100 identical requests released by one start gate call
//! a dummy paid API through [`Once::run`] for the same (user, day).
//!
//! Expected on every backend: exactly 1 API call, 1 success, 99 [`Error::Conflict`], no
//! deadlock (every request answers within 30 s), 1 stored record — completed, fence 1.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tollgate::once::{Error, Failure, Fingerprint, Key, Once, RecordState, Store};

use crate::release_together;

/// Requests per run.
pub const REQUESTS: usize = 100;

/// The (user, day) key every request uses.
pub fn report_key() -> Key {
    Key::new("daily-report", "user-1/2026-11-21")
}

/// Tallies of one run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Calls of the paid API.
    pub api_calls: usize,
    /// Requests that got the report.
    pub successes: usize,
    /// Requests turned away with a conflict.
    pub conflicts: usize,
}

/// One engine shared by the 100 requests (one process): the conflicts are decided in-process.
pub async fn one_engine<S: Store + Clone>(store: S) {
    let once = Once::new(store.clone());
    race(&store, move |_| once.clone()).await;
}

/// One engine per request over one store (100 processes): the conflicts are decided by the
/// store's atomic claim.
pub async fn engine_per_request<S: Store + Clone>(store: S) {
    let shared = store.clone();
    race(&store, move |_| Once::new(shared.clone())).await;
}

async fn race<S: Store>(store: &S, engine: impl Fn(usize) -> Once<S>) {
    let api_calls = Arc::new(AtomicUsize::new(0));
    let (answered, answers) = watch::channel(0usize);
    let answered = Arc::new(answered);
    let requests = release_together(REQUESTS, |i| {
        let once = engine(i);
        let (api_calls, answered) = (Arc::clone(&api_calls), Arc::clone(&answered));
        let mut answers = answers.clone();
        async move {
            // The paid API answers only once every other request has been answered, so a
            // second call could not hide behind a finished first one.
            let paid_api = move || async move {
                api_calls.fetch_add(1, Ordering::SeqCst);
                let _ = answers.wait_for(|n| *n >= REQUESTS - 1).await;
                Ok::<_, Failure<String>>("one report for 4 letters".to_string())
            };
            let outcome = once
                .run(report_key(), Fingerprint::new("letters"), paid_api)
                .await;
            answered.send_modify(|n| *n += 1);
            outcome
        }
    });
    let outcomes = tokio::time::timeout(Duration::from_secs(30), requests)
        .await
        .expect("a request deadlocked");
    let mut tally = Tally::default();
    for outcome in outcomes {
        match outcome {
            Ok(out) => {
                assert_eq!(out.value, "one report for 4 letters");
                assert!(!out.replayed);
                tally.successes += 1;
            }
            Err(Error::Conflict) => tally.conflicts += 1,
            Err(other) => panic!("unexpected answer {other:?}"),
        }
    }
    tally.api_calls = api_calls.load(Ordering::SeqCst);
    let expected = Tally {
        api_calls: 1,
        successes: 1,
        conflicts: REQUESTS - 1,
    };
    assert_eq!(tally, expected);
    let record = store.read(&report_key()).await.unwrap().unwrap();
    assert_eq!(record.fence.0, 1, "claimed once");
    assert!(matches!(record.state, RecordState::Completed { .. }));
}
