//! Wait mode on PostgreSQL: a waiter in another engine is woken by `LISTEN/NOTIFY` when the
//! holder settles, instead of polling the database. On the server's own clock (no pinned
//! time): the production path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tollgate_postgres::PostgresStore;
use tollgate_postgres::tollgate::once::{
    Failure, Fingerprint, Key, OnInProgress, Once, Output, Store,
};
use tollgate_testkit::Counting;

/// How long the engine waits between two claims of a store that wakes it: a waiter returning
/// well within it was woken, not polled.
const BACKSTOP: Duration = Duration::from_secs(2);

fn key() -> Key {
    Key::new("notify", "user-1/2026-11-21")
}

async fn wait_on(schema: &str, listen: bool) -> (PostgresStore, Counting<PostgresStore>) {
    let server = support::shared_server().await;
    let holder = support::store(server, schema, None).await;
    let mut waiter = PostgresStore::builder(support::pool(server, 2)).schema(schema);
    if listen {
        waiter = waiter.listen(support::config(server));
    }
    (holder, Counting::new(waiter.open().await.unwrap()))
}

/// Runs a holder that completes right after the waiter found its key in progress; returns
/// the waiter's answer, its claims, and how long it took from the completion.
async fn waited(
    holder: PostgresStore,
    polled: Counting<PostgresStore>,
) -> (Output<String>, usize, Duration) {
    let wait = OnInProgress::Wait {
        deadline: Duration::from_secs(30),
    };
    let waiter = Once::builder(polled.clone()).on_in_progress(wait).build();
    let (started, has_started) = oneshot::channel();
    let (completed, has_completed) = oneshot::channel();
    let held = tokio::spawn({
        let polled = polled.clone();
        async move {
            let work = move || async move {
                let _ = started.send(());
                polled.answered(1).await; // the waiter found the key in progress
                Ok::<_, Failure<String>>("from the holder".to_string())
            };
            let done = Once::new(holder)
                .run(key(), Fingerprint::new("a"), work)
                .await;
            let _ = completed.send(Instant::now());
            done
        }
    });
    has_started.await.unwrap();
    let answer = waiter
        .run(key(), Fingerprint::new("a"), || async {
            Ok::<_, Failure<String>>("from the waiter".to_string())
        })
        .await
        .unwrap();
    let woken = Instant::now();
    assert!(!held.await.unwrap().unwrap().replayed);
    let completed_at = has_completed.await.unwrap();
    (
        answer,
        polled.claims(),
        woken.saturating_duration_since(completed_at),
    )
}

/// Waits, with a deadline, until the store's listener has connected (it does so in the
/// background).
async fn listening(store: &Counting<PostgresStore>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.wakes_waiters() {
        assert!(Instant::now() < deadline, "the listener never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiter_is_woken_by_the_holders_notification_not_by_polling() {
    let (holder, polled) = wait_on(&support::fresh_schema(), true).await;
    listening(&polled).await;
    let (answer, claims, after) = waited(holder, polled).await;
    assert_eq!(answer.value, "from the holder");
    assert!(answer.replayed);
    assert_eq!(
        claims, 2,
        "in progress once, then completed: no polling in between"
    );
    assert!(after < BACKSTOP / 2, "woken {after:?} after the completion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_listener_a_waiter_polls_with_backoff() {
    let (holder, polled) = wait_on(&support::fresh_schema(), false).await;
    assert!(!polled.wakes_waiters());
    let (answer, claims, _) = waited(holder, polled).await;
    assert_eq!(
        (answer.value.as_str(), answer.replayed),
        ("from the holder", true)
    );
    assert!(claims >= 2);
}
