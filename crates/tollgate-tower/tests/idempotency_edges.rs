//! The idempotency layer's edges, on the in-memory store: a client that goes away, an inner
//! service that fails or panics, waiting instead of 409, and the metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/metrics.rs"]
mod metrics_support;
#[path = "support/app.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use metrics_support::{counted, recorded};
use tollgate::clock::{Clock, ManualClock};
use tollgate::once::{MemoryStore, OnInProgress, Once};
use tollgate_tower::idempotency::IdempotencyLayer;
use tower::{Layer, ServiceExt, service_fn};

use support::{Answer, App, post, request};

#[tokio::test]
async fn idempotency_dropped_first_request_still_runs_to_completion_and_is_stored() {
    let (app, mut entered) = App::new();
    let once = Once::builder(MemoryStore::new())
        .on_in_progress(OnInProgress::Wait {
            deadline: Duration::from_secs(60),
        })
        .build();
    let svc = IdempotencyLayer::with_once(once).layer(app.service());

    let first = tokio::spawn(svc.clone().oneshot(post("/held", "k", "{}")));
    entered.recv().await.unwrap();
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());

    // The retry waits for the execution the dropped request started, and gets its response.
    let retry = tokio::spawn(svc.clone().oneshot(post("/held", "k", "{}")));
    app.gate.add_permits(1);
    let retry = Answer::read(retry.await.unwrap().unwrap()).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(retry.replayed());
    assert_eq!(retry.headers["x-call"], "1");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn idempotency_inner_service_error_is_returned_and_frees_the_key() {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = service_fn({
        let calls = calls.clone();
        move |_req: Request<Full<Bytes>>| {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match call {
                    1 => Err("connection reset"),
                    _ => Ok(Response::new(Full::new(Bytes::from_static(b"ok")))),
                }
            }
        }
    });
    let svc = IdempotencyLayer::new(MemoryStore::new()).layer(inner);
    let err = svc
        .clone()
        .oneshot(post("/orders", "k", "{}"))
        .await
        .unwrap_err();
    assert_eq!(err, "connection reset");
    let ok = Answer::read(
        svc.clone()
            .oneshot(post("/orders", "k", "{}"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((ok.status, ok.replayed()), (StatusCode::OK, false));
    let again = Answer::read(svc.oneshot(post("/orders", "k", "{}")).await.unwrap()).await;
    assert!(again.replayed());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn idempotency_panicking_handler_answers_500_then_409_then_outcome_unknown() {
    let clock = ManualClock::new();
    let once = Once::builder(MemoryStore::with_clock(Clock::from(clock.clone())))
        .lease(Duration::from_secs(30), Duration::from_secs(10))
        .build();
    let inner = service_fn(|_req: Request<Full<Bytes>>| async {
        if true {
            panic!("handler bug");
        }
        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let svc = IdempotencyLayer::with_once(once).layer(inner);

    let answer = Answer::read(svc.clone().oneshot(post("/x", "k", "{}")).await.unwrap()).await;
    answer.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "handler_panicked");
    assert!(
        !answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("handler bug")
    );
    // The panicked attempt keeps the key until its lease runs out...
    let answer = Answer::read(svc.clone().oneshot(post("/x", "k", "{}")).await.unwrap()).await;
    answer.assert_error(StatusCode::CONFLICT, "idempotency_key_in_use");
    // ...and is then of unknown outcome: it may have had its effect, so it is not re-run.
    clock.advance(Duration::from_secs(31));
    let answer = Answer::read(svc.oneshot(post("/x", "k", "{}")).await.unwrap()).await;
    answer.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "outcome_unknown");
}

#[tokio::test]
async fn idempotency_response_over_the_limit_is_502_and_not_stored() {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(MemoryStore::new())
        .response_limit(10)
        .layer(app.service());
    for call in 1..=2 {
        let answer = Answer::read(
            svc.clone()
                .oneshot(post("/orders", "k", "{}"))
                .await
                .unwrap(),
        );
        answer
            .await
            .assert_error(StatusCode::BAD_GATEWAY, "response_too_large");
        assert_eq!(
            app.calls(),
            call,
            "the key is freed, so the retry runs again"
        );
    }
}

#[test]
fn idempotency_requests_are_counted_by_outcome() {
    let snapshot = recorded(|| async {
        let (app, mut entered) = App::new();
        let svc = IdempotencyLayer::new(MemoryStore::new())
            .body_limit(64)
            .layer(app.service());
        let send = |req| {
            let svc = svc.clone();
            async move { svc.oneshot(req).await.unwrap().status() }
        };
        send(post("/orders", "a", "{}")).await; // executed
        send(post("/orders", "a", "{}")).await; // replayed
        send(post("/orders", "a", "{\"other\":1}")).await; // mismatch
        send(request(http::Method::POST, "/orders", None, None, "")).await; // missing_key
        send(post("/orders", "", "{}")).await; // invalid_key
        send(post("/orders", "b", &"x".repeat(65))).await; // too_large
        send(request(http::Method::GET, "/orders", None, None, "")).await; // not counted
        let held = tokio::spawn(send(post("/held", "c", "{}")));
        entered.recv().await.unwrap();
        send(post("/held", "c", "{}")).await; // conflict
        app.gate.add_permits(1);
        held.await.unwrap(); // executed
    });
    for (outcome, n) in [
        ("executed", 2),
        ("replayed", 1),
        ("mismatch", 1),
        ("missing_key", 1),
        ("invalid_key", 1),
        ("too_large", 1),
        ("conflict", 1),
        ("error", 0),
    ] {
        let counted = counted(
            &snapshot,
            "tollgate_idempotency_requests_total",
            "outcome",
            outcome,
        );
        assert_eq!(counted, n, "{outcome}");
    }
}
