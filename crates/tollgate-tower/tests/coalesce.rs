//! The coalescing layer: one call of the inner service per key among racing requests, shared
//! responses and errors, and a call that outlives its leader.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Barrier, Notify, Semaphore};
use tollgate::flight::Role;
use tollgate_tower::coalesce::{CoalesceError, CoalesceLayer, CoalesceService};
use tower::{Layer, Service, ServiceExt, service_fn};

#[path = "support/metrics.rs"]
mod metrics_support;

use metrics_support::{counted, recorded};

const RACERS: usize = 1_000;

/// The upstream: counts calls, waits for the gate, then answers with `body` (or fails).
#[derive(Clone)]
struct Upstream {
    /// Calls of the service (its synchronous part: a joiner must not make one).
    called: Arc<AtomicUsize>,
    /// Calls whose future ran.
    calls: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    done: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl Upstream {
    fn new() -> Self {
        Upstream {
            called: Arc::new(AtomicUsize::new(0)),
            calls: Arc::new(AtomicUsize::new(0)),
            finished: Arc::new(AtomicUsize::new(0)),
            done: Arc::new(Notify::new()),
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    fn open(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    /// Calls that reached the upstream; each also checks that its future is the only one made
    /// for it (no call of the service was made and dropped).
    fn calls(&self) -> usize {
        let calls = self.calls.load(Ordering::SeqCst);
        assert_eq!(
            self.called.load(Ordering::SeqCst),
            calls,
            "calls made = calls run"
        );
        calls
    }

    /// A service answering `200 <path>`, or `Err(path)` for paths starting with `/fail`.
    fn service(
        &self,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = String,
        Future = impl Future<Output = Result<Response<Full<Bytes>>, String>> + Send + use<>,
    > + Clone
    + Send
    + 'static {
        let up = self.clone();
        service_fn(move |req: Request<Full<Bytes>>| {
            let up = up.clone();
            up.called.fetch_add(1, Ordering::SeqCst);
            async move {
                up.calls.fetch_add(1, Ordering::SeqCst);
                up.gate.acquire().await.unwrap().forget();
                let path = req.uri().path().to_owned();
                up.finished.fetch_add(1, Ordering::SeqCst);
                up.done.notify_one();
                if path.starts_with("/fail") {
                    return Err(format!("upstream failed on {path}"));
                }
                Ok(Response::new(Full::new(Bytes::from(path))))
            }
        })
    }
}

fn by_path(req: &Request<Full<Bytes>>) -> Option<String> {
    (req.method() == http::Method::GET).then(|| req.uri().path().to_owned())
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).unwrap()
}

type Svc<S> = CoalesceService<S, fn(&Request<Full<Bytes>>) -> Option<String>, String, String>;

fn coalesced<S>(inner: S) -> Svc<S> {
    let key: fn(&Request<Full<Bytes>>) -> Option<String> = by_path;
    CoalesceLayer::new(key).layer(inner)
}

/// Polls `fut` once (registering it with the flight), counts it, then drives it to the end.
async fn registered<F: Future>(fut: F, polled: &AtomicUsize, all: &Notify, n: usize) -> F::Output {
    let mut fut = pin!(fut);
    let first = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    if polled.fetch_add(1, Ordering::SeqCst) + 1 == n {
        all.notify_one();
    }
    match first {
        Poll::Ready(out) => out,
        Poll::Pending => fut.await,
    }
}

/// A response read to its end, with the role its body carried.
type Served = (Option<Role>, Response<Bytes>);

/// `n` tasks released together send `GET path`; the upstream is let go once every request is
/// registered. Returns every caller's result.
async fn race<S>(
    svc: &Svc<S>,
    up: &Upstream,
    path: &str,
    n: usize,
) -> Vec<Result<Served, CoalesceError<String>>>
where
    Svc<S>: Service<
            Request<Full<Bytes>>,
            Response = Response<tollgate_tower::coalesce::CoalescedBody<Full<Bytes>>>,
            Error = CoalesceError<String>,
        > + Clone
        + Send
        + 'static,
    <Svc<S> as Service<Request<Full<Bytes>>>>::Future: Send,
{
    let start = Arc::new(Barrier::new(n));
    let polled = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(Notify::new());
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (svc, start, polled, all) =
                (svc.clone(), start.clone(), polled.clone(), all.clone());
            let path = path.to_owned();
            tokio::spawn(async move {
                start.wait().await;
                let call = svc.oneshot(get(&path));
                let res = registered(call, &polled, &all, n).await?;
                let (parts, body) = res.into_parts();
                let role = body.role();
                let body = body.collect().await.unwrap().to_bytes();
                Ok((role, Response::from_parts(parts, body)))
            })
        })
        .collect();
    all.notified().await;
    up.open();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_racing_requests_for_one_key_call_the_service_once_and_all_get_its_response() {
    let up = Upstream::new();
    let svc = coalesced(up.service());
    let results = race(&svc, &up, "/report", RACERS).await;
    assert_eq!(up.calls(), 1, "one call of the inner service");
    let roles: Vec<Role> = results
        .iter()
        .map(|r| {
            let (role, res) = r.as_ref().expect("every caller gets the response");
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.body(), "/report");
            assert_eq!(res.extensions().get::<Role>(), None, "not asked for");
            role.expect("a coalesced body knows its role")
        })
        .collect();
    assert_eq!(roles.iter().filter(|r| **r == Role::Leader).count(), 1);
    assert_eq!(
        roles.iter().filter(|r| **r == Role::Joiner).count(),
        RACERS - 1
    );
    assert_eq!(svc.in_flight(), 0, "no entry outlives its execution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asked_for_the_role_is_also_in_each_responses_extensions() {
    let up = Upstream::new();
    let key: fn(&Request<Full<Bytes>>) -> Option<String> = by_path;
    let svc = CoalesceLayer::new(key)
        .role_in_extensions()
        .layer(up.service());
    let results = race(&svc, &up, "/report", RACERS).await;
    assert_eq!(up.calls(), 1);
    let mut leaders = 0;
    for r in &results {
        let (role, res) = r.as_ref().expect("every caller gets the response");
        assert_eq!(res.extensions().get::<Role>(), role.as_ref());
        leaders += usize::from(*role == Some(Role::Leader));
    }
    assert_eq!(leaders, 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Ok((Some(Role::Joiner), _))))
            .count(),
        RACERS - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_error_of_the_shared_call_reaches_every_racer_and_the_next_request_runs_afresh() {
    let up = Upstream::new();
    let svc = coalesced(up.service());
    let results = race(&svc, &up, "/fail", RACERS).await;
    assert_eq!(up.calls(), 1);
    for r in &results {
        match r {
            Err(CoalesceError::Inner(e)) => assert_eq!(e, "upstream failed on /fail"),
            other => panic!("expected the shared error, got {other:?}"),
        }
    }
    let again = svc.clone().oneshot(get("/fail")).await;
    assert!(matches!(again, Err(CoalesceError::Inner(_))));
    assert_eq!(up.calls(), 2, "an error is shared, not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_survives_the_leaders_cancellation_and_the_joiner_gets_its_response() {
    let up = Upstream::new();
    let svc = coalesced(up.service());
    let mut leader = Box::pin(svc.clone().oneshot(get("/report")));
    let mut joiner = Box::pin(svc.clone().oneshot(get("/report")));
    // First polls register both: the leader's call is running (blocked on the gate).
    assert!(poll_fn(|cx| Poll::Ready(leader.as_mut().poll(cx).is_pending())).await);
    assert!(poll_fn(|cx| Poll::Ready(joiner.as_mut().poll(cx).is_pending())).await);
    drop(leader); // the first client went away
    up.open();
    let res = joiner.await.expect("the joiner is served");
    assert_eq!(res.body().role(), Some(Role::Joiner));
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        "/report"
    );
    assert_eq!(up.calls(), 1, "nobody paid twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_only_caller_was_dropped_still_runs_to_its_end() {
    let up = Upstream::new();
    let svc = coalesced(up.service());
    let mut leader = Box::pin(svc.clone().oneshot(get("/report")));
    assert!(poll_fn(|cx| Poll::Ready(leader.as_mut().poll(cx).is_pending())).await);
    drop(leader);
    let finished = up.done.notified();
    up.open();
    finished.await;
    assert_eq!(up.finished.load(Ordering::SeqCst), 1);
}

/// The turn is taken in `call`: a response future never polled still registered its
/// execution, which runs (in a task, since its leader is gone) and is joined by the next
/// request instead of a second call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_starts_at_call_time_even_if_its_response_future_is_never_polled() {
    let up = Upstream::new();
    let mut svc = coalesced(up.service());
    poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let unpolled = svc.call(get("/report"));
    assert_eq!(svc.in_flight(), 1, "registered without a poll");
    drop(unpolled);
    poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let joiner = svc.call(get("/report"));
    up.open();
    let res = joiner.await.unwrap();
    assert_eq!(res.body().role(), Some(Role::Joiner));
    assert_eq!(
        up.calls(),
        1,
        "the unpolled request's call was joined, not repeated"
    );
    assert_eq!(svc.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_key_pass_through_and_distinct_keys_run_separately() {
    let up = Upstream::new();
    up.open();
    let svc = coalesced(up.service());
    let post = Request::post("/report").body(Full::default()).unwrap();
    let res = svc.clone().oneshot(post).await.unwrap();
    assert_eq!(res.body().role(), None, "not coalesced");
    let (a, b) = tokio::join!(
        svc.clone().oneshot(get("/a")),
        svc.clone().oneshot(get("/b"))
    );
    assert_eq!(a.unwrap().body().role(), Some(Role::Leader));
    assert_eq!(b.unwrap().body().role(), Some(Role::Leader));
    assert_eq!(up.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_fails_every_caller_and_the_http_layer_answers_502() {
    let big = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(vec![b'x'; 64]))))
    });
    let layer = CoalesceLayer::new(|req: &Request<Full<Bytes>>| Some(req.uri().path().to_owned()))
        .body_limit(16);
    let plain = layer.clone().layer(big);
    let err = plain.oneshot(get("/big")).await.unwrap_err();
    assert!(matches!(err, CoalesceError::BodyTooLarge { limit: 16 }));
    let http = layer.respond_unavailable().layer(big);
    let res = http.oneshot(get("/big")).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        res.body().role(),
        None,
        "a rejection was not served by a call"
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "upstream_body_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_call_answers_500_without_the_panic_message_and_the_key_runs_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let inner = service_fn(move |_req: Request<Full<Bytes>>| {
        let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                panic!("secret internal detail");
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let layer = CoalesceLayer::new(|req: &Request<Full<Bytes>>| Some(req.uri().path().to_owned()));
    let plain = layer.clone().layer(inner.clone());
    let http = layer.respond_unavailable().layer(inner);

    let res = http.clone().oneshot(get("/p")).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "handler_panicked");
    let message = json["message"].as_str().unwrap();
    assert!(!message.is_empty() && !message.contains("secret"), "{json}");
    // The plain layer's error keeps the message for the server's own logs.
    calls.store(0, Ordering::SeqCst);
    let err = plain.oneshot(get("/p")).await.unwrap_err();
    assert!(
        matches!(&err, CoalesceError::Panicked(m) if m == "secret internal detail"),
        "{err}"
    );
    // The key is free again: the next request runs the service afresh.
    let res = http.oneshot(get("/p")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// The inner service's `call` itself (not its future) panics: a leader calls it while taking
/// its turn, and the panic still reaches the caller as an error and frees the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_inner_services_call_itself_reaches_the_caller_and_frees_the_key() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let inner = service_fn(move |_req: Request<Full<Bytes>>| {
        assert!(
            counted.fetch_add(1, Ordering::SeqCst) > 0,
            "the first call panics before making its future"
        );
        std::future::ready(Ok::<_, Infallible>(Response::new(Full::new(
            Bytes::from_static(b"ok"),
        ))))
    });
    let svc = CoalesceLayer::new(|req: &Request<Full<Bytes>>| Some(req.uri().path().to_owned()))
        .layer(inner);
    let err = svc.clone().oneshot(get("/p")).await.unwrap_err();
    assert!(
        matches!(&err, CoalesceError::Panicked(m) if m.contains("the first call panics")),
        "{err}"
    );
    assert_eq!(svc.in_flight(), 0, "the panic freed the key");
    let res = svc.clone().oneshot(get("/p")).await.unwrap();
    assert_eq!(res.body().role(), Some(Role::Leader));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn requests_are_counted_by_role() {
    let snapshot = recorded(|| async {
        let up = Upstream::new();
        let svc = coalesced(up.service());
        // `join!` polls in order: the first request leads (its call waits for the gate),
        // the next two join it, then the gate opens.
        let (a, b, c, ()) = tokio::join!(
            svc.clone().oneshot(get("/m")),
            svc.clone().oneshot(get("/m")),
            svc.clone().oneshot(get("/m")),
            async { up.open() },
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        let post = Request::post("/m").body(Full::default()).unwrap();
        svc.clone().oneshot(post).await.unwrap();
        assert_eq!(up.calls(), 2, "one shared call, one passed through");
    });
    let by_role = |role| counted(&snapshot, "tollgate_coalesce_requests_total", "role", role);
    assert_eq!(by_role("leader"), 1);
    assert_eq!(by_role("joiner"), 2);
    assert_eq!(by_role("passthrough"), 1);
}

/// Besides its inner service, a coalescing service is one pointer: a clone for each request
/// updates one reference count (and is moved in a register right after the clone).
#[test]
fn a_coalescing_service_is_one_pointer_besides_its_inner_service() {
    let inner = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    assert_eq!(size_of_val(&inner), 0);
    let by_path = |req: &Request<Full<Bytes>>| Some(req.uri().path().to_owned());
    let svc: CoalesceService<_, _, String, Infallible> = CoalesceLayer::new(by_path).layer(inner);
    assert_eq!(size_of_val(&svc), size_of::<usize>());
}
