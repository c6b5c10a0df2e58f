//! The `Idempotency-Key` header through tollgate-tower's public layer: any header value is
//! either refused with 400 without running the handler, or runs it once and replays after.
#![no_main]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tollgate::once::MemoryStore;
use tollgate_tower::idempotency::IdempotencyLayer;
use tower::{Layer, ServiceExt};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return; // http refuses it before any layer sees it
    };
    RUNTIME.with(|rt| rt.block_on(check(value)));
});

async fn check(key: HeaderValue) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let handler = tower::service_fn(move |_: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut created = Response::new(Full::new(Bytes::from_static(b"made")));
        *created.status_mut() = StatusCode::CREATED;
        async { Ok::<_, Infallible>(created) }
    });
    let service = IdempotencyLayer::new(MemoryStore::new()).layer(handler);
    let request = || {
        Request::post("/orders")
            .header("idempotency-key", key.clone())
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("a valid request")
    };
    let first = service.clone().oneshot(request()).await.expect("an answer");
    match first.status() {
        StatusCode::CREATED => {
            let again = service.oneshot(request()).await.expect("an answer");
            assert_eq!(again.status(), StatusCode::CREATED);
            assert_eq!(again.headers()["idempotent-replayed"], "true");
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        }
        StatusCode::BAD_REQUEST => assert_eq!(calls.load(Ordering::SeqCst), 0),
        other => panic!("unexpected {other} for key {key:?}"),
    }
}
