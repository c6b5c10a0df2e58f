//! The coalescing layer behind a real HTTP server (axum, over loopback TCP): racing clients
//! share one call of the upstream and all get its response; a client that hangs up mid-request
//! (hyper then drops its response future) does not cancel the call for the others.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, Notify, Semaphore};
use tollgate_testkit::http_servers::allow_open_files;
use tollgate_tower::coalesce::CoalesceLayer;
use tower::{Layer, Service, service_fn};

/// Clients racing for one report (each holds two file descriptors in this process: its socket
/// and the server's; see [`allow_open_files`]).
const CLIENTS: usize = 300;

/// A failing test ends here instead of hanging (not a synchronisation: the awaited futures
/// finish as soon as the test's own steps let them).
async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} never finished"))
}

/// A count that can be waited on.
#[derive(Clone, Default)]
struct Count {
    n: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl Count {
    fn add(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn get(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }

    /// Waits until the count reaches `n` (bounded, so a failing test ends instead of hanging).
    async fn reaches(&self, n: usize, what: &str) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if self.get() >= n {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("{what}: {} of {n}", self.get()));
    }
}

/// The upstream: counts its calls and answers once the gate opens.
#[derive(Clone)]
struct Upstream {
    calls: Count,
    gate: Arc<Semaphore>,
}

/// Counts the requests that have taken their turn (the coalescing service takes it in
/// `call`) and the response futures dropped before they finished (a client that hung up).
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    taken: Count,
    dropped: Count,
}

/// A response future that counts itself as dropped if it never finished.
struct Probe<F> {
    call: Pin<Box<F>>,
    finished: bool,
    dropped: Count,
}

impl<F: Future> Future for Probe<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = std::task::ready!(self.call.as_mut().poll(cx));
        self.finished = true;
        Poll::Ready(out)
    }
}

impl<F> Drop for Probe<F> {
    fn drop(&mut self) {
        if !self.finished {
            self.dropped.add();
        }
    }
}

impl<S: Service<Request<Body>>> Service<Request<Body>> for Counted<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Probe<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let call = Box::pin(self.inner.call(req));
        self.taken.add();
        Probe {
            call,
            finished: false,
            dropped: self.dropped.clone(),
        }
    }
}

type Key = fn(&Request<Body>) -> Option<String>;

fn by_path(req: &Request<Body>) -> Option<String> {
    (req.method() == Method::GET).then(|| req.uri().path().to_owned())
}

struct Server {
    addr: SocketAddr,
    upstream: Upstream,
    taken: Count,
    dropped: Count,
    /// Executions running in the server's coalescing layer.
    in_flight: Box<dyn Fn() -> usize + Send + Sync>,
}

/// axum serving `GET /report/{name}` through the coalescing layer on a free loopback port.
async fn serve() -> Server {
    let upstream = Upstream {
        calls: Count::default(),
        gate: Arc::new(Semaphore::new(0)),
    };
    let up = upstream.clone();
    let report = service_fn(move |req: Request<Body>| {
        let up = up.clone();
        async move {
            up.calls.add();
            up.gate.acquire().await.unwrap().forget();
            let body = format!("report for {}", req.uri().path());
            Ok::<_, Infallible>(Response::new(Body::from(body)))
        }
    });
    let key: Key = by_path;
    let coalesce = CoalesceLayer::new(key).respond_unavailable().layer(report);
    let probe = coalesce.clone();
    let (taken, dropped) = (Count::default(), Count::default());
    let counted = Counted {
        inner: coalesce,
        taken: taken.clone(),
        dropped: dropped.clone(),
    };
    let app = Router::new().route_service("/report/{name}", counted);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        addr,
        upstream,
        taken,
        dropped,
        in_flight: Box::new(move || probe.get_ref().in_flight()),
    }
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: tollgate.test\r\nConnection: close\r\n\r\n")
}

/// One `GET path` on a connection of its own: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request(path).as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let status = text.get(9..12).expect("a status line").parse().unwrap();
    let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (status, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_http_clients_racing_for_one_report_share_one_upstream_call() {
    allow_open_files(2 * CLIENTS as u64 + 256);
    let server = serve().await;
    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let start = Arc::clone(&start);
            let addr = server.addr;
            tokio::spawn(async move {
                start.wait().await;
                get(addr, "/report/q3").await
            })
        })
        .collect();
    // Every request has taken its turn before the upstream may answer: one leads, the rest
    // joined its call.
    server.taken.reaches(CLIENTS, "requests in").await;
    server.upstream.gate.add_permits(CLIENTS);
    for client in clients {
        assert_eq!(
            bounded("a client", client).await.unwrap(),
            (200, "report for /report/q3".to_owned())
        );
    }
    assert_eq!(server.upstream.calls.get(), 1, "one upstream call for all");
    assert_eq!(server.dropped.get(), 0);
    assert_eq!((server.in_flight)(), 0, "nothing left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_client_hangs_up_does_not_cancel_the_call_its_joiners_wait_for() {
    let server = serve().await;
    let mut leader = TcpStream::connect(server.addr).await.unwrap();
    leader
        .write_all(request("/report/q4").as_bytes())
        .await
        .unwrap();
    server.upstream.calls.reaches(1, "the leader's call").await;
    let joiner = tokio::spawn(get(server.addr, "/report/q4"));
    server.taken.reaches(2, "the joiner in").await;
    drop(leader); // the first client goes away; hyper drops its response future
    server
        .dropped
        .reaches(1, "the leader's response dropped")
        .await;
    server.upstream.gate.add_permits(1);
    assert_eq!(
        bounded("the joiner", joiner).await.unwrap(),
        (200, "report for /report/q4".to_owned())
    );
    assert_eq!(server.upstream.calls.get(), 1, "nobody paid twice");
    assert_eq!((server.in_flight)(), 0);
}
