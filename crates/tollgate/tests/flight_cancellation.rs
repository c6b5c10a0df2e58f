//! Cancellation and panics: dropping callers never costs a second execution, the abort option
//! stops work nobody waits for, and a panic reaches every caller without leaving an entry.
// Helpers outside #[test] functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/flight.rs"]
mod support;

use std::pin::pin;

use support::{Counter, Gate, Shared, gated, joiners, poll_once, probed};
use tokio::sync::oneshot;
use tollgate::flight::{Error, Flight, Role};

/// Waits (without sleeping) until the flight has retired every execution.
async fn until_idle(flight: &Shared) {
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !flight.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the entry was never removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_dropped_mid_flight_joiners_are_served_by_the_one_execution() {
    let flight = Shared::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    let (led_tx, led_rx) = oneshot::channel();
    let (leader_flight, r, g) = (flight.clone(), runs.clone(), gate.clone());
    let leader = tokio::spawn(async move {
        let mut run = pin!(leader_flight.run("k", || gated(&r, &g, Ok(5))));
        assert!(poll_once(run.as_mut()).await.is_pending());
        let _ = led_tx.send(());
        run.await
    });
    led_rx.await.unwrap();
    let joined = joiners(&flight, 200).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    gate.open();
    for joiner in joined {
        let outcome = joiner.await.unwrap();
        assert_eq!((outcome.result, outcome.role), (Ok(5), Role::Joiner));
    }
    assert_eq!(runs.get(), 1, "nobody paid twice");
    assert_eq!(flight.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_nobody_waits_for_still_completes_by_default() {
    let flight = Shared::new();
    let (done_tx, done_rx) = oneshot::channel();
    // The work cannot finish before its caller is gone: it waits for this gate.
    let (open, gate) = oneshot::channel::<()>();
    {
        let mut run = pin!(flight.run("k", || async move {
            let _ = gate.await;
            let _ = done_tx.send(());
            Ok(1)
        }));
        assert!(poll_once(run.as_mut()).await.is_pending());
    } // the only caller is dropped here
    let _ = open.send(());
    done_rx
        .await
        .expect("the work was cancelled with its caller");
    until_idle(&flight).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_callers_dropped_with_abort_option_aborts_the_work() {
    let flight: Shared = Flight::builder().abort_when_unused(true).build();
    let (runs, gate) = (Counter::default(), Gate::new());
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let mut leader = Box::pin(flight.run("k", || probed(&runs, &gate, dropped_tx)));
    assert!(poll_once(leader.as_mut()).await.is_pending());
    let joined = joiners(&flight, 50).await;
    for joiner in &joined {
        joiner.abort();
    }
    for joiner in joined {
        assert!(joiner.await.unwrap_err().is_cancelled());
    }
    assert_eq!(flight.len(), 1, "the leader still waits: no abort yet");
    drop(leader);
    let finished = dropped_rx.await.unwrap();
    assert!(!finished, "the work was aborted, not run to completion");
    assert_eq!(flight.len(), 0);
    // The key is free: the next caller starts a fresh execution.
    gate.open();
    let next = flight.run("k", || gated(&runs, &gate, Ok(2))).await;
    assert_eq!((next.result, next.role), (Ok(2), Role::Leader));
    assert_eq!(runs.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_reaches_every_caller_and_the_key_is_usable_right_after() {
    let flight = Shared::new();
    let gate = Gate::new();
    let g = gate.clone();
    let mut leader = Box::pin(flight.run("k", || async move {
        g.wait().await;
        panic!("boom");
    }));
    assert!(poll_once(leader.as_mut()).await.is_pending());
    let joined = joiners(&flight, 100).await;
    gate.open();
    let panicked = Err(Error::Panicked("boom".to_owned()));
    assert_eq!(leader.await.result, panicked);
    for joiner in joined {
        assert_eq!(joiner.await.unwrap().result, panicked);
    }
    assert_eq!(flight.len(), 0);
    let next = flight.run("k", || async { Ok(3) }).await;
    assert_eq!((next.result, next.role), (Ok(3), Role::Leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_while_building_the_work_leaves_no_entry() {
    let flight = Shared::new();
    let outcome = flight
        .run("k", || -> std::future::Ready<Result<u64, String>> {
            panic!("bad input")
        })
        .await;
    assert_eq!(outcome.result, Err(Error::Panicked("bad input".to_owned())));
    assert_eq!(outcome.role, Role::Leader);
    assert_eq!(flight.len(), 0);
}
