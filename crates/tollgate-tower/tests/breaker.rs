//! The breaker layers: rejection without calling the inner service, the 503 answer, recovery.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tollgate::breaker::{Breaker, BreakerConfig, SlidingWindow, State};
use tollgate::clock::{Clock, ManualClock};
use tollgate_tower::breaker::{BreakerError, BreakerLayer, HttpBreakerLayer};
use tower::{Layer, ServiceExt, service_fn};

const WAIT: Duration = Duration::from_secs(30);

/// Opens after 4 calls with at least half failed; one trial call in half-open.
fn breaker() -> (Arc<Breaker>, ManualClock) {
    let clock = ManualClock::new();
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(4))
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(WAIT)
        .permitted_calls_in_half_open(1);
    let breaker = Breaker::with_clock("upstream", config, Clock::from(clock.clone())).unwrap();
    (Arc::new(breaker), clock)
}

/// An HTTP upstream answering with the status in `status`, counting its calls.
#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
}

impl Upstream {
    fn answering(status: StatusCode) -> Self {
        let upstream = Upstream::default();
        upstream.set(status);
        upstream
    }

    fn set(&self, status: StatusCode) {
        self.status.store(status.as_u16(), Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn service(
        &self,
    ) -> impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        let upstream = self.clone();
        service_fn(move |_req: Request<Full<Bytes>>| {
            let upstream = upstream.clone();
            async move {
                upstream.calls.fetch_add(1, Ordering::SeqCst);
                let status = StatusCode::from_u16(upstream.status.load(Ordering::SeqCst)).unwrap();
                let mut res = Response::new(Full::new(Bytes::from_static(b"upstream")));
                *res.status_mut() = status;
                Ok::<_, Infallible>(res)
            }
        })
    }
}

fn request() -> Request<Full<Bytes>> {
    Request::new(Full::default())
}

#[tokio::test]
async fn http_breaker_opens_after_server_errors_and_answers_503_without_calling_upstream() {
    let (breaker, clock) = breaker();
    let upstream = Upstream::answering(StatusCode::INTERNAL_SERVER_ERROR);
    let svc = HttpBreakerLayer::new(breaker.clone()).layer(upstream.service());

    for _ in 0..4 {
        let res = svc.clone().oneshot(request()).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(upstream.calls(), 4);

    clock.advance(Duration::from_millis(10_500));
    for _ in 0..3 {
        let res = svc.clone().oneshot(request()).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        // 19.5 s left, rounded up.
        assert_eq!(res.headers()["retry-after"], "20");
        assert_eq!(res.headers()["content-type"], "application/json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "circuit_open");
        assert_eq!(json["breaker"], "upstream");
        assert_eq!(json["retry_after_secs"], 20);
        assert!(json["message"].as_str().unwrap().contains("upstream"));
    }
    assert_eq!(
        upstream.calls(),
        4,
        "an open breaker must not call upstream"
    );
}

#[tokio::test]
async fn http_breaker_counts_4xx_as_success_and_stays_closed() {
    let (breaker, _clock) = breaker();
    let upstream = Upstream::answering(StatusCode::NOT_FOUND);
    let svc = HttpBreakerLayer::new(breaker.clone()).layer(upstream.service());
    for _ in 0..10 {
        let res = svc.clone().oneshot(request()).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(upstream.calls(), 10);
}

/// Four `502`s open the breaker, the next call is answered `503` without reaching the
/// upstream, and after the wait a successful trial closes it: the same through any handle `H`.
async fn open_then_close_by_a_trial<H>(breaker: H, clock: &ManualClock)
where
    H: std::ops::Deref<Target = Breaker> + Clone,
{
    let upstream = Upstream::answering(StatusCode::BAD_GATEWAY);
    let svc = HttpBreakerLayer::new(breaker.clone()).layer(upstream.service());
    for _ in 0..4 {
        let res = svc.clone().oneshot(request()).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }
    assert_eq!(breaker.state(), State::Open);
    let rejected = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(rejected.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(rejected.headers()["retry-after"], "30");
    assert_eq!(upstream.calls(), 4);

    clock.advance(WAIT);
    upstream.set(StatusCode::OK);
    let trial = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(trial.status(), StatusCode::OK);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(upstream.calls(), 5);

    // Closed again with a new window: the next call is its first.
    let after = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(after.status(), StatusCode::OK);
    assert_eq!(upstream.calls(), 6);
    assert_eq!(breaker.totals().calls, 1);
}

#[tokio::test]
async fn half_open_trial_success_closes_the_breaker() {
    let (breaker, clock) = breaker();
    open_then_close_by_a_trial(breaker, &clock).await;
}

#[tokio::test]
async fn half_open_trial_failure_opens_the_breaker_again() {
    let (breaker, clock) = breaker();
    let upstream = Upstream::answering(StatusCode::SERVICE_UNAVAILABLE);
    let svc = HttpBreakerLayer::new(breaker.clone()).layer(upstream.service());
    for _ in 0..4 {
        svc.clone().oneshot(request()).await.unwrap();
    }
    clock.advance(WAIT);
    let trial = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(trial.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(breaker.state(), State::Open);
    let rejected = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(rejected.headers()["retry-after"], "30");
    assert_eq!(upstream.calls(), 5);
}

/// A generic (non-HTTP) service: errors are failures, rejections are typed errors.
#[tokio::test]
async fn typed_breaker_rejects_with_open_error_and_counts_errors_as_failures() {
    let (breaker, _clock) = breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = service_fn({
        let calls = calls.clone();
        move |n: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if n == 0 { Err("zero") } else { Ok(n) } }
        }
    });
    let svc = BreakerLayer::new(breaker.clone()).layer(inner);

    assert_eq!(svc.clone().oneshot(7).await.unwrap(), 7);
    for _ in 0..3 {
        let err = svc.clone().oneshot(0).await.unwrap_err();
        assert_eq!(err, BreakerError::Inner("zero"));
    }
    assert_eq!(breaker.state(), State::Open);

    let err = svc.clone().oneshot(7).await.unwrap_err();
    let BreakerError::Open(rejected) = &err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert_eq!(rejected.breaker(), "upstream");
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // The typed error still turns into the HTTP answer on demand.
    let res: Response<Full<Bytes>> = err.into_response().unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "30");
}

#[tokio::test]
async fn forced_open_breaker_answers_503_without_retry_after() {
    let (breaker, _clock) = breaker();
    breaker.force_open();
    let upstream = Upstream::answering(StatusCode::OK);
    let svc = BreakerLayer::new(breaker)
        .classifier(tollgate_tower::breaker::ServerErrorIsFailure)
        .respond_unavailable()
        .layer(upstream.service());
    let res = svc.oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_none());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "circuit_open");
    assert!(json.get("retry_after_secs").is_none());
    assert_eq!(upstream.calls(), 0);
}

/// A layer over a `&'static Breaker` (no reference count per call) behaves as over an `Arc`:
/// the same counts, the same rejection, the same half-open trial.
#[tokio::test]
async fn a_static_breaker_handle_opens_rejects_and_closes_like_an_arc() {
    let (breaker, clock) = breaker();
    let breaker: &'static Breaker = Box::leak(Box::new(Arc::into_inner(breaker).unwrap()));
    open_then_close_by_a_trial(breaker, &clock).await;
}

/// 1,000 tasks released at once through one `&'static` breaker on a multi-thread runtime:
/// every call is counted exactly once, and the permits (moved into the tasks with the response
/// futures) are all settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_breaker_handle_counts_1000_racing_calls_exactly() {
    const TASKS: usize = 1_000;
    // A window holding every call, so its totals count them all.
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(TASKS as u32))
        .minimum_calls(TASKS as u32);
    let breaker: &'static Breaker = Box::leak(Box::new(Breaker::new("racing", config).unwrap()));
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = service_fn({
        let calls = calls.clone();
        move |n: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::task::yield_now().await;
                if n.is_multiple_of(4) {
                    Err("every fourth")
                } else {
                    Ok(n)
                }
            }
        }
    });
    let svc = BreakerLayer::new(breaker).layer(inner);
    let gate = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS as u32)
        .map(|n| {
            let (svc, gate) = (svc.clone(), gate.clone());
            tokio::spawn(async move {
                gate.wait().await;
                svc.oneshot(n).await
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => {}
            Err(BreakerError::Inner(_)) => failed += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(failed, TASKS / 4);
    assert_eq!(calls.load(Ordering::SeqCst), TASKS);
    assert_eq!(breaker.totals().calls, TASKS as u32);
    assert_eq!(breaker.totals().failures, (TASKS / 4) as u32);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn http_breaker_hands_an_inner_error_back_unchanged_and_counts_it_as_a_failure() {
    let (breaker, _clock) = breaker();
    let calls = Arc::new(AtomicUsize::new(0));
    let failing = {
        let calls = Arc::clone(&calls);
        service_fn(move |_req: Request<Full<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<Response<Full<Bytes>>, _>("upstream down") }
        })
    };
    let svc = HttpBreakerLayer::new(breaker.clone()).layer(failing);
    for _ in 0..4 {
        assert_eq!(
            svc.clone().oneshot(request()).await.unwrap_err(),
            "upstream down"
        );
    }
    let totals = breaker.totals();
    assert_eq!((totals.calls, totals.failures), (4, 4));
    assert_eq!(breaker.state(), State::Open);
    let res = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "an open breaker calls nothing"
    );
}

#[tokio::test]
async fn an_http_breakers_trial_dropped_before_it_returns_gives_its_slot_back() {
    let (breaker, clock) = breaker();
    let upstream = Upstream::answering(StatusCode::INTERNAL_SERVER_ERROR);
    let svc = HttpBreakerLayer::new(breaker.clone()).layer(upstream.service());
    for _ in 0..4 {
        svc.clone().oneshot(request()).await.unwrap();
    }
    assert_eq!(breaker.state(), State::Open);
    clock.advance(WAIT + Duration::from_secs(1));

    // The one trial half-open admits is taken by a call that never returns, then dropped.
    let hanging =
        HttpBreakerLayer::new(breaker.clone()).layer(service_fn(|_req: Request<Full<Bytes>>| {
            std::future::pending::<Result<Response<Full<Bytes>>, Infallible>>()
        }));
    let mut trial = Box::pin(hanging.oneshot(request()));
    let pending =
        std::future::poll_fn(|cx| std::task::Poll::Ready(trial.as_mut().poll(cx).is_pending()))
            .await;
    assert!(pending, "the hanging trial is admitted and waits");
    assert_eq!(breaker.state(), State::HalfOpen);
    drop(trial);

    // Its slot is back: the next call is admitted as the trial, and its success closes.
    upstream.set(StatusCode::OK);
    let res = svc.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(upstream.calls(), 5);
}
