//! Concurrent callers of one key share one execution; distinct keys are independent.
// Helpers outside #[test] functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/flight.rs"]
mod support;

use std::time::Duration;

use support::{Counter, Gate, gated, spawn_gated, spawn_registered};
use tollgate::flight::{Error, Flight, Outcome, Role};

type Shared = Flight<&'static str, u64, String>;

/// Starts `racers` tasks behind a start gate, each calling `run(key)` with `work`'s result, and
/// returns their outcomes once all of them are registered and the work is released.
async fn race(
    flight: &Shared,
    racers: usize,
    result: Result<u64, String>,
    runs: &Counter,
) -> Vec<Outcome<u64, String>> {
    let gate = Gate::new();
    let tasks = spawn_registered(racers, |_| {
        let (flight, runs, gate, result) =
            (flight.clone(), runs.clone(), gate.clone(), result.clone());
        async move { flight.run("report", || gated(&runs, &gate, result)).await }
    })
    .await;
    assert_eq!(flight.len(), 1, "all racers share one entry");
    gate.open();
    let mut outcomes = Vec::with_capacity(racers);
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

fn count(outcomes: &[Outcome<u64, String>], role: Role) -> usize {
    outcomes.iter().filter(|o| o.role == role).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_racers_on_one_key_execute_once_and_all_are_served() {
    let flight = Shared::new();
    let runs = Counter::default();
    let outcomes = race(&flight, 10_000, Ok(7), &runs).await;
    assert_eq!(runs.get(), 1);
    assert_eq!(outcomes.len(), 10_000);
    assert!(outcomes.iter().all(|o| o.result == Ok(7)));
    assert_eq!(count(&outcomes, Role::Leader), 1);
    assert_eq!(count(&outcomes, Role::Joiner), 9_999);
    assert_eq!(flight.len(), 0, "no entry outlives its execution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_error_is_shared_by_every_caller_not_rerun_by_each() {
    let flight = Shared::new();
    let runs = Counter::default();
    let outcomes = race(&flight, 500, Err("quota".to_owned()), &runs).await;
    assert_eq!(runs.get(), 1);
    assert!(
        outcomes
            .iter()
            .all(|o| o.result == Err(Error::Failed("quota".to_owned())))
    );
    assert_eq!(count(&outcomes, Role::Leader), 1);
    assert_eq!(flight.len(), 0);
    // Failures are not remembered: the next call executes again.
    let again = flight.run("report", || async { Ok(8) }).await;
    assert_eq!((again.result, again.role), (Ok(8), Role::Leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distinct_keys_never_wait_on_each_other() {
    let flight = Shared::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    let slow = flight.clone();
    let (r, g) = (runs.clone(), gate.clone());
    let mut a = tokio::spawn(async move { slow.run("a", || gated(&r, &g, Ok(1))).await });
    // Hundreds of other keys complete while key "a" is held in flight by its closed gate.
    let keys: Vec<&'static str> = (0..300)
        .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
        .collect();
    let others = spawn_gated(keys.len(), |i| {
        let (flight, key) = (flight.clone(), keys[i]);
        async move { flight.run(key, || async { Ok(2) }).await }
    });
    for other in others {
        let outcome = tokio::time::timeout(Duration::from_secs(30), other)
            .await
            .expect("a distinct key waited on key a")
            .unwrap();
        assert_eq!((outcome.result, outcome.role), (Ok(2), Role::Leader));
    }
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut a).await.is_err(),
        "a is still held"
    );
    gate.open();
    assert_eq!(a.await.unwrap().result, Ok(1));
    assert_eq!(runs.get(), 1);
    assert_eq!(flight.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequential_calls_each_execute_once() {
    let flight = Shared::new();
    let runs = Counter::default();
    for i in 0..100 {
        let r = runs.clone();
        let outcome = flight
            .run("seq", move || async move { Ok(r.hit() as u64 + i) })
            .await;
        assert_eq!(outcome.role, Role::Leader);
        assert_eq!(
            flight.len(),
            0,
            "the entry is gone before the result is seen"
        );
    }
    assert_eq!(runs.get(), 100);
}
