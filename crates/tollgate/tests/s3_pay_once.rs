//! S3, in-process half: 1,000 identical requests released by one start gate call the paid API
//! exactly once, and every request gets the same daily report.
// Helpers outside #[test] functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/flight.rs"]
mod support;

use std::sync::Arc;

use support::{Counter, Gate, spawn_registered};
use tollgate::flight::{Flight, Role};

/// The paid LLM API: counts calls, answers once the test lets it.
async fn analyse_letters(api_calls: Counter, gate: Gate, user: u32) -> Result<Arc<String>, String> {
    api_calls.hit();
    gate.wait().await;
    Ok(Arc::new(format!("report of user {user} for 2026-11-21")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_thousand_racers_on_one_key_call_the_paid_api_once() {
    const RACERS: usize = 1_000;
    let reports: Flight<(u32, &'static str), Arc<String>, String> = Flight::new();
    let (api_calls, gate) = (Counter::default(), Gate::new());
    // Released together by a start gate; each request is registered before the API answers.
    let requests = spawn_registered(RACERS, |_| {
        let (reports, api_calls, gate) = (reports.clone(), api_calls.clone(), gate.clone());
        let key = (1, "2026-11-21");
        async move {
            reports
                .run(key, || analyse_letters(api_calls, gate, 1))
                .await
        }
    })
    .await;
    gate.open();
    let mut leaders = 0;
    let mut first: Option<Arc<String>> = None;
    for request in requests {
        let outcome = request.await.unwrap();
        leaders += usize::from(outcome.role == Role::Leader);
        let report = outcome.result.unwrap();
        let first = first.get_or_insert_with(|| Arc::clone(&report));
        assert!(
            Arc::ptr_eq(first, &report),
            "one report, shared by every request"
        );
    }
    assert_eq!(api_calls.get(), 1, "the paid API ran once");
    assert_eq!(leaders, 1);
    assert_eq!(reports.len(), 0);
}
