//! The Idempotency-Key layer, on every backend: the draft's answers (400/409/413/422, replay),
//! 5xx not stored, tenant isolation, and 200 concurrent requests of one key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/app.rs"]
mod support;

use std::sync::Arc;

use http::{Method, StatusCode};
use tokio::sync::{Barrier, mpsc};
use tollgate::once::{MemoryStore, Store};
use tollgate_sqlite::SqliteStore;
use tollgate_tower::idempotency::IdempotencyLayer;
use tower::{Layer, ServiceExt};

use support::{Answer, App, post, request};

async fn memory() -> (MemoryStore, ()) {
    (MemoryStore::new(), ())
}

async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("once.db")).await.unwrap();
    (store, dir)
}

/// Runs each case on the in-memory and the SQLite store: `memory::<case>`, `sqlite::<case>`.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _keep) = super::memory().await;
                    super::$case(store).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let (store, _keep) = super::sqlite().await;
                    super::$case(store).await;
                }
            )*
        }
    };
}

on_every_backend!(
    idempotency_missing_key_is_400_and_never_reaches_the_app,
    idempotency_invalid_keys_are_400,
    idempotency_get_and_keyless_optional_requests_pass_through,
    idempotency_completed_key_replays_identical_response_and_runs_once,
    idempotency_client_errors_are_stored_and_replayed,
    idempotency_same_key_different_body_is_422,
    idempotency_same_key_in_flight_is_409,
    idempotency_server_errors_are_returned_unchanged_and_not_stored,
    idempotency_oversized_body_is_413,
    idempotency_one_tenant_never_replays_another_tenants_response,
    idempotency_same_key_different_bodies_in_two_tenants_is_no_mismatch,
    idempotency_request_without_tenant_is_refused_when_tenants_are_required,
    idempotency_200_concurrent_requests_of_one_key_run_once,
);

async fn idempotency_missing_key_is_400_and_never_reaches_the_app<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());
    for method in [Method::POST, Method::PATCH] {
        let req = request(method, "/orders", None, None, "{}");
        let answer = Answer::read(svc.clone().oneshot(req).await.unwrap()).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "idempotency_key_missing");
    }
    assert_eq!(app.calls(), 0);
}

async fn idempotency_invalid_keys_are_400<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());
    let too_long = "k".repeat(256);
    for key in ["", "\"\"", too_long.as_str(), "two words", "\"unterminated"] {
        let answer = Answer::read(
            svc.clone()
                .oneshot(post("/orders", key, "{}"))
                .await
                .unwrap(),
        );
        answer
            .await
            .assert_error(StatusCode::BAD_REQUEST, "idempotency_key_invalid");
    }
    let mut twice = post("/orders", "a", "{}");
    twice
        .headers_mut()
        .append("idempotency-key", "b".parse().unwrap());
    let answer = Answer::read(svc.clone().oneshot(twice).await.unwrap()).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "idempotency_key_invalid");
    assert_eq!(app.calls(), 0);

    // The longest key allowed, and the draft's quoted form, are accepted.
    let longest = "k".repeat(255);
    let ok = Answer::read(
        svc.clone()
            .oneshot(post("/orders", &longest, "{}"))
            .await
            .unwrap(),
    );
    assert_eq!(ok.await.status, StatusCode::CREATED);
    let quoted = post("/orders", "\"8e03978e-40d5\"", "{}");
    assert_eq!(
        svc.oneshot(quoted).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(app.calls(), 2);
}

async fn idempotency_get_and_keyless_optional_requests_pass_through<St: Store>(store: St) {
    let (app, _) = App::new();
    let layer = IdempotencyLayer::new(store);
    let svc = layer.clone().layer(app.service());
    for _ in 0..2 {
        let req = request(Method::GET, "/orders", Some("g"), None, "");
        let answer = Answer::read(svc.clone().oneshot(req).await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::CREATED);
        assert!(!answer.replayed());
        // Untouched: even the hop-by-hop header the app set is still there.
        assert_eq!(answer.headers["connection"], "keep-alive");
    }
    assert_eq!(app.calls(), 2);

    let optional = layer
        .namespace("optional")
        .key_required(false)
        .layer(app.service());
    for _ in 0..2 {
        let req = request(Method::POST, "/orders", None, None, "{}");
        let answer = Answer::read(optional.clone().oneshot(req).await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::CREATED);
        assert!(!answer.replayed());
    }
    assert_eq!(app.calls(), 4);
}

async fn idempotency_completed_key_replays_identical_response_and_runs_once<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());
    let body = r#"{"sku":"tea","qty":2}"#;

    let first = Answer::read(
        svc.clone()
            .oneshot(post("/orders?x=1", "k1", body))
            .await
            .unwrap(),
    );
    let first = first.await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert!(
        first.headers.get("connection").is_none(),
        "hop-by-hop headers are not kept"
    );
    assert_eq!(
        first.headers["content-length"],
        first.body.len().to_string()
    );
    assert_eq!(first.json()["echo"], body);

    for _ in 0..3 {
        let again = svc
            .clone()
            .oneshot(post("/orders?x=1", "k1", body))
            .await
            .unwrap();
        let again = Answer::read(again).await;
        assert!(again.replayed());
        let mut headers = again.headers.clone();
        headers.remove("idempotent-replayed");
        assert_eq!(
            (again.status, headers, &again.body),
            (first.status, first.headers.clone(), &first.body)
        );
    }
    assert_eq!(app.calls(), 1);
}

async fn idempotency_client_errors_are_stored_and_replayed<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());
    let first = Answer::read(
        svc.clone()
            .oneshot(post("/invalid", "k", "{}"))
            .await
            .unwrap(),
    );
    let first = first.await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    let again = Answer::read(
        svc.clone()
            .oneshot(post("/invalid", "k", "{}"))
            .await
            .unwrap(),
    );
    let again = again.await;
    assert!(again.replayed());
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(app.calls(), 1);
}

async fn idempotency_same_key_different_body_is_422<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());
    let first = svc
        .clone()
        .oneshot(post("/orders", "k", r#"{"qty":1}"#))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    for (path, body) in [("/orders", r#"{"qty":2}"#), ("/other", r#"{"qty":1}"#)] {
        let answer = Answer::read(svc.clone().oneshot(post(path, "k", body)).await.unwrap());
        answer
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    }
    let patch = request(Method::PATCH, "/orders", Some("k"), None, r#"{"qty":1}"#);
    let answer = Answer::read(svc.clone().oneshot(patch).await.unwrap()).await;
    answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(app.calls(), 1);
}

async fn idempotency_same_key_in_flight_is_409<St: Store>(store: St) {
    let (app, mut entered) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());
    let first = tokio::spawn(svc.clone().oneshot(post("/held", "k", "{}")));
    entered.recv().await.unwrap();

    let second = Answer::read(svc.clone().oneshot(post("/held", "k", "{}")).await.unwrap());
    second
        .await
        .assert_error(StatusCode::CONFLICT, "idempotency_key_in_use");
    // Another request under the key in flight is a mismatch, not a conflict.
    let other = Answer::read(
        svc.clone()
            .oneshot(post("/held", "k", "{\"x\":1}"))
            .await
            .unwrap(),
    );
    other
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");

    app.gate.add_permits(1);
    let first = Answer::read(first.await.unwrap().unwrap()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed());
    let third = Answer::read(svc.oneshot(post("/held", "k", "{}")).await.unwrap()).await;
    assert!(third.replayed());
    assert_eq!(third.body, first.body);
    assert_eq!(app.calls(), 1);
}

async fn idempotency_server_errors_are_returned_unchanged_and_not_stored<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());

    let failed = Answer::read(
        svc.clone()
            .oneshot(post("/flaky", "k", "{}"))
            .await
            .unwrap(),
    );
    let failed = failed.await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.json()["status"], "upstream exploded");
    assert_eq!(failed.headers["x-call"], "1");
    // Unchanged: the app's own headers, hop-by-hop ones included, and no replay marker.
    assert_eq!(failed.headers["connection"], "keep-alive");
    assert!(!failed.replayed());

    let retried = Answer::read(
        svc.clone()
            .oneshot(post("/flaky", "k", "{}"))
            .await
            .unwrap(),
    );
    let retried = retried.await;
    assert_eq!(retried.status, StatusCode::CREATED);
    assert!(!retried.replayed());
    assert_eq!(retried.headers["x-call"], "2");

    let replayed = Answer::read(svc.oneshot(post("/flaky", "k", "{}")).await.unwrap()).await;
    assert!(replayed.replayed());
    assert_eq!(replayed.body, retried.body);
    assert_eq!(app.calls(), 2);
}

async fn idempotency_oversized_body_is_413<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = IdempotencyLayer::new(store)
        .body_limit(16)
        .layer(app.service());
    let big = "x".repeat(17);

    // Declared too large, and found too large while reading (no content-length).
    let mut declared = post("/orders", "k", &big);
    declared.headers_mut().insert("content-length", 17.into());
    let undeclared = post("/orders", "k", &big);
    for req in [declared, undeclared] {
        let answer = Answer::read(svc.clone().oneshot(req).await.unwrap()).await;
        answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    }
    assert_eq!(app.calls(), 0);

    let fits = svc
        .oneshot(post("/orders", "k", &"x".repeat(16)))
        .await
        .unwrap();
    assert_eq!(fits.status(), StatusCode::CREATED);
    assert_eq!(app.calls(), 1);
}

fn tenant_layer<St: Store>(store: St) -> IdempotencyLayer<St> {
    IdempotencyLayer::new(store).tenant(|parts| {
        let tenant = parts.headers.get("x-tenant")?.to_str().ok()?;
        Some(tenant.to_owned())
    })
}

async fn idempotency_one_tenant_never_replays_another_tenants_response<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = tenant_layer(store).layer(app.service());
    let send = |tenant: &'static str| {
        let req = request(
            Method::POST,
            "/orders",
            Some("K"),
            Some(tenant),
            r#"{"qty":1}"#,
        );
        let svc = svc.clone();
        async move { Answer::read(svc.oneshot(req).await.unwrap()).await }
    };

    let a = send("tenant-a").await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.json()["tenant"], "tenant-a");

    let b = send("tenant-b").await;
    assert_eq!(b.status, StatusCode::CREATED);
    assert!(
        !b.replayed(),
        "tenant B got a replay of tenant A's response"
    );
    assert_eq!(b.json()["tenant"], "tenant-b");
    assert_eq!(b.headers["x-call"], "2");
    assert_eq!(app.calls(), 2);

    // Each tenant still gets its own replay.
    for (tenant, original) in [("tenant-a", &a), ("tenant-b", &b)] {
        let again = send(tenant).await;
        assert!(again.replayed());
        assert_eq!(again.body, original.body);
    }
    // A tenant name that embeds the other's prefix reaches neither record.
    let crafted = send("tenant-").await;
    assert!(!crafted.replayed());
    assert_eq!(app.calls(), 3);
}

async fn idempotency_same_key_different_bodies_in_two_tenants_is_no_mismatch<St: Store>(store: St) {
    let (app, _) = App::new();
    let svc = tenant_layer(store).layer(app.service());
    for (tenant, body) in [("a", r#"{"qty":1}"#), ("b", r#"{"qty":99}"#)] {
        let req = request(Method::POST, "/orders", Some("K"), Some(tenant), body);
        let answer = Answer::read(svc.clone().oneshot(req).await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        assert_eq!(answer.json()["echo"], body);
        assert!(!answer.replayed());
    }
    assert_eq!(app.calls(), 2);
}

async fn idempotency_request_without_tenant_is_refused_when_tenants_are_required<St: Store>(
    store: St,
) {
    let (app, _) = App::new();
    let layer = tenant_layer(store);
    let svc = layer.clone().layer(app.service());
    let answer = Answer::read(svc.oneshot(post("/orders", "k", "{}")).await.unwrap()).await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "tenant_missing");

    let svc = layer
        .tenant_missing_status(StatusCode::BAD_REQUEST)
        .layer(app.service());
    let answer = Answer::read(svc.oneshot(post("/orders", "k", "{}")).await.unwrap()).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "tenant_missing");
    assert_eq!(app.calls(), 0);
}

/// 200 requests of one key released together: the app holds the first until every other one
/// has been answered, so the split is exact — one 201, 199 × 409.
async fn idempotency_200_concurrent_requests_of_one_key_run_once<St: Store>(store: St) {
    const TASKS: usize = 200;
    let (app, _entered) = App::new();
    let svc = IdempotencyLayer::new(store).layer(app.service());
    let start = Arc::new(Barrier::new(TASKS));
    let (done, mut answers) = mpsc::unbounded_channel();
    for _ in 0..TASKS {
        let (svc, start, done) = (svc.clone(), start.clone(), done.clone());
        tokio::spawn(async move {
            let req = post("/held", "same-key", r#"{"qty":1}"#);
            start.wait().await;
            let answer = Answer::read(svc.oneshot(req).await.unwrap()).await;
            done.send(answer).unwrap();
        });
    }
    let mut conflicts = 0;
    for _ in 0..TASKS - 1 {
        let answer = answers.recv().await.unwrap();
        answer.assert_error(StatusCode::CONFLICT, "idempotency_key_in_use");
        conflicts += 1;
    }
    app.gate.add_permits(1);
    let executed = answers.recv().await.unwrap();
    assert_eq!(executed.status, StatusCode::CREATED);
    assert!(!executed.replayed());
    assert_eq!((1, conflicts), (1, TASKS - 1));
    assert_eq!(app.calls(), 1);
}
