//! Two services (two processes, as far as the engine knows: separate `Once`s and separate
//! connections) on one SQLite file: the store alone decides who runs a key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/app.rs"]
mod support;

use std::sync::Arc;

use http::StatusCode;
use std::time::Duration;
use tokio::sync::{Barrier, mpsc};

use tollgate::once::{OnInProgress, Once};
use tollgate_sqlite::SqliteStore;
use tollgate_testkit::Counting;
use tollgate_tower::idempotency::IdempotencyLayer;
use tower::{Layer, ServiceExt};

use support::{Answer, App, post};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_in_flight_on_one_instance_is_409_on_another_then_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let (app, mut entered) = App::new();
    let a = IdempotencyLayer::new(SqliteStore::open(&path).await.unwrap()).layer(app.service());
    let b = IdempotencyLayer::new(SqliteStore::open(&path).await.unwrap()).layer(app.service());

    let first = tokio::spawn(a.clone().oneshot(post("/held", "k", "{}")));
    entered.recv().await.unwrap();
    let conflict = Answer::read(b.clone().oneshot(post("/held", "k", "{}")).await.unwrap()).await;
    conflict.assert_error(StatusCode::CONFLICT, "idempotency_key_in_use");

    app.gate.add_permits(1);
    let first = Answer::read(first.await.unwrap().unwrap()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = Answer::read(b.clone().oneshot(post("/held", "k", "{}")).await.unwrap()).await;
    assert!(replay.replayed());
    assert_eq!(replay.body, first.body);
    let mismatch = Answer::read(b.oneshot(post("/held", "k", "{\"x\":1}")).await.unwrap()).await;
    mismatch.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(app.calls(), 1);
}

/// 200 requests of one key over two instances released together: one runs, 199 get 409 —
/// half of them from the other instance's store claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_200_concurrent_requests_over_two_instances_run_once() {
    const TASKS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let (app, _entered) = App::new();
    let instances = [
        IdempotencyLayer::new(SqliteStore::open(&path).await.unwrap()).layer(app.service()),
        IdempotencyLayer::new(SqliteStore::open(&path).await.unwrap()).layer(app.service()),
    ];
    let start = Arc::new(Barrier::new(TASKS));
    let (done, mut answers) = mpsc::unbounded_channel();
    for i in 0..TASKS {
        let (svc, start, done) = (instances[i % 2].clone(), start.clone(), done.clone());
        tokio::spawn(async move {
            let req = post("/held", "same-key", "{}");
            start.wait().await;
            done.send(Answer::read(svc.oneshot(req).await.unwrap()).await)
                .unwrap();
        });
    }
    for _ in 0..TASKS - 1 {
        let answer = answers.recv().await.unwrap();
        answer.assert_error(StatusCode::CONFLICT, "idempotency_key_in_use");
    }
    app.gate.add_permits(1);
    let executed = answers.recv().await.unwrap();
    assert_eq!(executed.status, StatusCode::CREATED);
    assert!(!executed.replayed());
    assert_eq!(app.calls(), 1);
}

/// A request waiting (in another instance) for the first request of its key receives that
/// request's own failure — its 502 — rather than a generic 503, and does not run the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_waiter_on_another_instance_gets_the_first_requests_own_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let (app, mut entered) = App::new();
    let a = IdempotencyLayer::new(SqliteStore::open(&path).await.unwrap()).layer(app.service());
    let polled = Counting::new(SqliteStore::open(&path).await.unwrap());
    let wait = OnInProgress::Wait {
        deadline: Duration::from_secs(30),
    };
    let waiting = Once::builder(polled.clone()).on_in_progress(wait).build();
    let b = IdempotencyLayer::with_once(waiting).layer(app.service());

    let first = tokio::spawn(a.oneshot(post("/held-502", "k", "{}")));
    entered.recv().await.unwrap();
    let waiter = tokio::spawn(b.oneshot(post("/held-502", "k", "{}")));
    polled.answered(1).await; // the waiter found the key in progress
    app.gate.add_permits(1);
    let first = Answer::read(first.await.unwrap().unwrap()).await;
    assert_eq!(first.status, StatusCode::BAD_GATEWAY);
    let waited = Answer::read(waiter.await.unwrap().unwrap()).await;
    waited.assert_error(StatusCode::BAD_GATEWAY, "original_failed");
    assert_eq!(app.calls(), 1, "the waiter did not run the handler");
}
