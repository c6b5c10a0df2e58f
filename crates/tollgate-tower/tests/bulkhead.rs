//! The bulkhead layers: exactly N calls held at once, the N+1th turned away, slots given back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Semaphore, mpsc};
use tollgate::policy::Bulkhead;
use tollgate_tower::bulkhead::{BulkheadError, BulkheadLayer, HttpBulkheadLayer};
use tower::{Layer, Service, ServiceExt, service_fn};

const MAX: usize = 3;

/// An upstream whose calls report that they started, then wait for the gate to let them finish.
#[derive(Clone)]
struct Held {
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
}

fn held() -> (Held, mpsc::UnboundedReceiver<()>) {
    let (entered, rx) = mpsc::unbounded_channel();
    let held = Held {
        calls: Arc::new(AtomicUsize::new(0)),
        gate: Arc::new(Semaphore::new(0)),
        entered,
    };
    (held, rx)
}

impl Held {
    fn service(
        &self,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        let held = self.clone();
        service_fn(move |_req: Request<Full<Bytes>>| {
            let held = held.clone();
            async move {
                held.calls.fetch_add(1, Ordering::SeqCst);
                held.entered.send(()).unwrap();
                held.gate.acquire().await.unwrap().forget();
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
            }
        })
    }
}

#[tokio::test]
async fn http_bulkhead_holds_n_calls_rejects_the_next_and_accepts_after_release() {
    let bulkhead = Bulkhead::new(MAX, Duration::ZERO);
    let (upstream, mut entered) = held();
    let svc = HttpBulkheadLayer::new(bulkhead.clone()).layer(upstream.service());

    let running: Vec<_> = (0..MAX)
        .map(|_| tokio::spawn(svc.clone().oneshot(Request::new(Full::default()))))
        .collect();
    for _ in 0..MAX {
        entered.recv().await.unwrap();
    }
    assert_eq!(bulkhead.available(), 0);

    let rejected = svc
        .clone()
        .oneshot(Request::new(Full::default()))
        .await
        .unwrap();
    assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers()["content-type"], "application/json");
    let body = rejected.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "bulkhead_full");
    assert_eq!(json["max_concurrent"], MAX);
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        MAX,
        "rejected call reached upstream"
    );

    upstream.gate.add_permits(MAX);
    for call in running {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(bulkhead.available(), MAX);

    upstream.gate.add_permits(1);
    let accepted = svc.oneshot(Request::new(Full::default())).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), MAX + 1);
}

#[tokio::test]
async fn typed_bulkhead_rejects_with_full_error() {
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let (upstream, mut entered) = held();
    let svc = BulkheadLayer::new(bulkhead.clone()).layer(upstream.service());

    let running = tokio::spawn(svc.clone().oneshot(Request::new(Full::default())));
    entered.recv().await.unwrap();
    match svc.clone().oneshot(Request::new(Full::default())).await {
        Err(BulkheadError::Full(full)) => assert_eq!(full.max_concurrent(), 1),
        other => panic!("expected BulkheadFull, got {other:?}"),
    }
    upstream.gate.add_permits(1);
    running.await.unwrap().unwrap();
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_a_response_future_mid_call_frees_its_slot() {
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let (upstream, mut entered) = held();
    let svc = HttpBulkheadLayer::new(bulkhead.clone()).layer(upstream.service());

    let running = tokio::spawn(svc.clone().oneshot(Request::new(Full::default())));
    entered.recv().await.unwrap();
    assert_eq!(bulkhead.available(), 0);
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    assert_eq!(bulkhead.available(), 1);

    upstream.gate.add_permits(1);
    let res = svc.oneshot(Request::new(Full::default())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_for_a_slot_up_to_max_wait() {
    let bulkhead = Bulkhead::new(1, Duration::from_secs(1));
    let (upstream, mut entered) = held();
    let svc = HttpBulkheadLayer::new(bulkhead.clone()).layer(upstream.service());

    let first = tokio::spawn(svc.clone().oneshot(Request::new(Full::default())));
    entered.recv().await.unwrap();
    let second = tokio::spawn(svc.clone().oneshot(Request::new(Full::default())));
    tokio::task::yield_now().await;
    assert!(
        entered.try_recv().is_err(),
        "the second call must wait for the slot"
    );
    // The first call finishes within the second's wait: the second gets the slot.
    upstream.gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2);
}

/// 500 tasks released at once through a layer over a `&'static Bulkhead` (no reference count
/// per call) on a multi-thread runtime: exactly `MAX` reach the upstream, every other one is
/// turned away, and every slot comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_bulkhead_handle_admits_exactly_max_of_500_racing_calls() {
    const TASKS: usize = 500;
    let bulkhead: &'static Bulkhead = Box::leak(Box::new(Bulkhead::new(MAX, Duration::ZERO)));
    let (upstream, mut entered) = held();
    let svc = HttpBulkheadLayer::new(bulkhead).layer(upstream.service());
    let gate = Arc::new(tokio::sync::Barrier::new(TASKS));
    let (done_tx, mut done) = mpsc::unbounded_channel();
    for _ in 0..TASKS {
        let (svc, gate, done_tx) = (svc.clone(), gate.clone(), done_tx.clone());
        tokio::spawn(async move {
            gate.wait().await;
            let res = svc.oneshot(Request::new(Full::default())).await.unwrap();
            done_tx.send(res.status()).unwrap();
        });
    }
    drop(done_tx);
    for _ in 0..MAX {
        entered.recv().await.unwrap();
    }
    // Everyone else is answered while the MAX admitted calls are still held.
    for _ in 0..TASKS - MAX {
        assert_eq!(done.recv().await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(bulkhead.available(), 0);
    upstream.gate.add_permits(MAX);
    for _ in 0..MAX {
        assert_eq!(done.recv().await.unwrap(), StatusCode::OK);
    }
    assert!(done.recv().await.is_none());
    assert_eq!(upstream.calls.load(Ordering::SeqCst), MAX);
    assert_eq!(bulkhead.available(), MAX);
}

/// A layer over a `&'static Bulkhead` waits for a slot up to `max_wait` like one over a
/// `Bulkhead`: a slot freed within the wait is taken (through a `Bulkhead` clone, then moved to
/// the layer's handle: still one slot), and a wait that runs out turns the call away.
#[tokio::test(start_paused = true)]
async fn a_static_bulkhead_handle_waits_up_to_max_wait() {
    let bulkhead: &'static Bulkhead = Box::leak(Box::new(Bulkhead::new(1, Duration::from_secs(1))));
    let (upstream, mut entered) = held();
    let svc = BulkheadLayer::new(bulkhead).layer(upstream.service());

    let first = tokio::spawn(svc.clone().oneshot(Request::new(Full::default())));
    entered.recv().await.unwrap();
    let second = tokio::spawn(svc.clone().oneshot(Request::new(Full::default())));
    tokio::task::yield_now().await;
    assert!(entered.try_recv().is_err(), "the second call waits");
    upstream.gate.add_permits(1); // the first call finishes within the wait
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    entered.recv().await.unwrap();
    assert_eq!(
        bulkhead.available(),
        0,
        "the second call holds the one slot"
    );

    // Nobody frees it now: after its second of waiting, a third call is turned away.
    let started = tokio::time::Instant::now();
    match svc.clone().oneshot(Request::new(Full::default())).await {
        Err(BulkheadError::Full(full)) => assert_eq!(full.max_concurrent(), 1),
        other => panic!("expected BulkheadFull, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    upstream.gate.add_permits(1);
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2);
    assert_eq!(bulkhead.available(), 1);
}
