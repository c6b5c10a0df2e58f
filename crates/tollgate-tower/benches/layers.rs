//! Per-request overhead of tollgate's tower layers against tower's own `ConcurrencyLimitLayer`
//! and tower-resilience 0.13's circuit breaker, bulkhead and coalesce layers, all over the same
//! trivial `service_fn`, in the same run, one `oneshot` per request. The futures are ready at
//! once and are polled in place (inside a current-thread runtime's context, without its
//! scheduler in the measurement). The coalesce layers are measured both ways: polled in place
//! (`*_polled`: a lone request runs its shared call inside its own future in both) and driven by
//! `block_on` of that runtime once per request (what an executor adds).
//!
//! The `coalesce_burst` group measures coalescing where it matters: a burst of same-key requests
//! against a slow upstream, its wall time and the CPU it costs.
//!
//! `cargo bench -p tollgate-tower --bench layers`
#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use tollgate::breaker::{Breaker, BreakerConfig};
use tollgate::policy::Bulkhead;
use tollgate_tower::breaker::{BreakerLayer, HttpBreakerLayer};
use tollgate_tower::bulkhead::{BulkheadLayer, HttpBulkheadLayer};
use tollgate_tower::coalesce::CoalesceLayer;
use tower::limit::ConcurrencyLimitLayer;
use tower::{Layer, Service, ServiceExt, service_fn};

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

const LIMIT: usize = 1_024;

fn trivial()
-> impl Service<Req, Response = Res, Error = Infallible, Future = Ready<Result<Res, Infallible>>>
+ Clone
+ Send
+ Sync
+ 'static {
    service_fn(|_req: Req| {
        ready(Ok::<_, Infallible>(Response::new(Full::new(
            Bytes::from_static(b"ok"),
        ))))
    })
}

fn request() -> Req {
    Request::new(Full::default())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Benchmarks `svc` as `name`: a clone of it serves one HTTP request per iteration, polled in
/// place until ready (every future here is ready without waiting).
fn bench<S>(g: &mut Group<'_>, name: &str, svc: S)
where
    S: Service<Req> + Clone,
    S::Error: std::fmt::Debug,
{
    bench_with(g, name, svc, request);
}

/// Like [`bench`], with the requests `make` builds.
fn bench_with<S, Rq>(g: &mut Group<'_>, name: &str, svc: S, make: fn() -> Rq)
where
    S: Service<Rq> + Clone,
    S::Error: std::fmt::Debug,
{
    g.bench_function(name, |b| {
        b.iter(|| black_box(poll_until_ready(svc.clone().oneshot(make())).unwrap()))
    });
}

/// Like [`bench_with`], but one service serves every request (`ready`, then `call`), so the
/// row shows what the layer adds per request without the clone and drop of the service that
/// `oneshot` on a clone costs every layer.
fn bench_reused<S, Rq>(g: &mut Group<'_>, name: &str, svc: S, make: fn() -> Rq)
where
    S: Service<Rq>,
    S::Error: std::fmt::Debug,
{
    let mut svc = svc;
    g.bench_function(name, |b| {
        b.iter(|| {
            poll_until_ready(svc.ready()).unwrap();
            black_box(poll_until_ready(svc.call(make())).unwrap())
        })
    });
}

/// The trivial service over a `u32`: no HTTP types to build, move and drop, so what a layer
/// adds is not hidden under the ~100 ns an HTTP request and response cost by themselves.
fn trivial_u32()
-> impl Service<u32, Response = u32, Error = Infallible, Future = Ready<Result<u32, Infallible>>>
+ Clone
+ Send
+ Sync
+ 'static {
    service_fn(|n: u32| ready(Ok::<_, Infallible>(n)))
}

fn number() -> u32 {
    black_box(7)
}

/// How a row drives its service.
#[derive(Clone, Copy)]
enum Drive {
    /// `oneshot` on a clone of the service, one per request.
    CloneEach,
    /// One service for every request: `ready`, then `call`.
    Reuse,
}

fn bench_u32<S>(g: &mut Group<'_>, drive: Drive, name: &str, svc: S)
where
    S: Service<u32> + Clone,
    S::Error: std::fmt::Debug,
{
    match drive {
        Drive::CloneEach => bench_with(g, name, svc, number),
        Drive::Reuse => bench_reused(g, name, svc, number),
    }
}

/// The layers that are not HTTP-specific, over [`trivial_u32`], driven as `drive` says.
fn small_layers_in(c: &mut Criterion, group: &str, drive: Drive) {
    let rt = runtime();
    let _context = rt.enter();
    let mut g = c.benchmark_group(group);
    bench_u32(&mut g, drive, "bare", trivial_u32());
    let breaker_layer = BreakerLayer::new(breaker());
    bench_u32(
        &mut g,
        drive,
        "tollgate_breaker",
        breaker_layer.layer(trivial_u32()),
    );
    bench_u32(
        &mut g,
        drive,
        "tollgate_breaker_static",
        BreakerLayer::new(static_breaker()).layer(trivial_u32()),
    );
    let resilience_breaker = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .build()
        .unwrap();
    bench_u32(
        &mut g,
        drive,
        "tower_resilience_breaker",
        resilience_breaker.layer(trivial_u32()),
    );
    let bulkhead = BulkheadLayer::new(Bulkhead::new(LIMIT, Duration::ZERO));
    bench_u32(
        &mut g,
        drive,
        "tollgate_bulkhead",
        bulkhead.layer(trivial_u32()),
    );
    bench_u32(
        &mut g,
        drive,
        "tollgate_bulkhead_static",
        BulkheadLayer::new(static_bulkhead()).layer(trivial_u32()),
    );
    let limit = ConcurrencyLimitLayer::new(LIMIT);
    bench_u32(
        &mut g,
        drive,
        "tower_concurrency_limit",
        limit.layer(trivial_u32()),
    );
    let resilience_bulkhead = tower_resilience::bulkhead::BulkheadLayer::builder()
        .max_concurrent_calls(LIMIT)
        .build()
        .unwrap();
    bench_u32(
        &mut g,
        drive,
        "tower_resilience_bulkhead",
        resilience_bulkhead.layer(trivial_u32()),
    );
    g.finish();
}

fn small_layers(c: &mut Criterion) {
    small_layers_in(c, "layers_u32", Drive::CloneEach);
}

fn small_layers_reused(c: &mut Criterion) {
    small_layers_in(c, "layers_u32_reused", Drive::Reuse);
}

/// Benchmarks `svc` as `name` with one `block_on` per request (the work may be spawned).
fn bench_blocking<S>(g: &mut Group<'_>, rt: &tokio::runtime::Runtime, name: &str, svc: S)
where
    S: Service<Req> + Clone,
    S::Error: std::fmt::Debug,
{
    g.bench_function(name, |b| {
        b.iter(|| black_box(rt.block_on(svc.clone().oneshot(request())).unwrap()))
    });
}

/// Polls `fut` until it is ready, with a waker that does nothing. Inlined into each row, so
/// the future is polled where it was built: moving it into a call's frame copied it in 16-byte
/// pieces read right after being written in smaller ones (a store-forwarding stall, ≈ 40 % of
/// some rows' samples in `perf annotate`), which measured the harness, not the layer.
#[inline(always)]
fn poll_until_ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn breaker() -> Arc<Breaker> {
    Arc::new(Breaker::new("bench", BreakerConfig::default()).unwrap())
}

/// A breaker that lives as long as the process: its layer's permits touch no reference count.
fn static_breaker() -> &'static Breaker {
    Box::leak(Box::new(
        Breaker::new("bench", BreakerConfig::default()).unwrap(),
    ))
}

/// A bulkhead that lives as long as the process.
fn static_bulkhead() -> &'static Bulkhead {
    Box::leak(Box::new(Bulkhead::new(LIMIT, Duration::ZERO)))
}

fn layers(c: &mut Criterion) {
    let rt = runtime();
    let _context = rt.enter();
    let mut g = c.benchmark_group("layers");
    bench(&mut g, "bare", trivial());

    bench(
        &mut g,
        "tollgate_breaker",
        BreakerLayer::new(breaker()).layer(trivial()),
    );
    bench(
        &mut g,
        "tollgate_http_breaker",
        HttpBreakerLayer::new(breaker()).layer(trivial()),
    );
    bench(
        &mut g,
        "tollgate_http_breaker_static",
        HttpBreakerLayer::new(static_breaker()).layer(trivial()),
    );
    let resilience_breaker = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .build()
        .unwrap();
    bench(
        &mut g,
        "tower_resilience_breaker",
        resilience_breaker.layer(trivial()),
    );

    let bulkhead = || Bulkhead::new(LIMIT, Duration::ZERO);
    bench(
        &mut g,
        "tollgate_bulkhead",
        BulkheadLayer::new(bulkhead()).layer(trivial()),
    );
    bench(
        &mut g,
        "tollgate_http_bulkhead",
        HttpBulkheadLayer::new(bulkhead()).layer(trivial()),
    );
    bench(
        &mut g,
        "tollgate_http_bulkhead_static",
        HttpBulkheadLayer::new(static_bulkhead()).layer(trivial()),
    );
    bench(
        &mut g,
        "tower_concurrency_limit",
        ConcurrencyLimitLayer::new(LIMIT).layer(trivial()),
    );
    let resilience_bulkhead = tower_resilience::bulkhead::BulkheadLayer::builder()
        .max_concurrent_calls(LIMIT)
        .build()
        .unwrap();
    bench(
        &mut g,
        "tower_resilience_bulkhead",
        resilience_bulkhead.layer(trivial()),
    );

    // Coalescing polled in place like the rows above: a lone request's shared call runs
    // inside its own future in both layers, so no runtime needs to be driven.
    let by_path = |req: &Req| Some(req.uri().path().to_owned());
    bench(
        &mut g,
        "tollgate_coalesce_polled",
        CoalesceLayer::new(by_path).layer(trivial()),
    );
    bench(
        &mut g,
        "tower_resilience_coalesce_polled",
        tower_resilience::coalesce::CoalesceLayer::new(|req: &Req| req.uri().path().to_owned())
            .layer(trivial()),
    );

    bench_blocking(&mut g, &rt, "bare_block_on", trivial());
    bench_blocking(
        &mut g,
        &rt,
        "tollgate_coalesce",
        CoalesceLayer::new(by_path).layer(trivial()),
    );
    let resilience_coalesce =
        tower_resilience::coalesce::CoalesceLayer::new(|req: &Req| req.uri().path().to_owned());
    bench_blocking(
        &mut g,
        &rt,
        "tower_resilience_coalesce",
        resilience_coalesce.layer(trivial()),
    );
    g.finish();
}

/// Requests in one burst of [`coalesce_burst`].
const BURST: usize = 100;

/// Calls that reached [`slow`].
static UPSTREAM_CALLS: AtomicU64 = AtomicU64::new(0);

/// An upstream that answers after 1 ms, as a slow dependency does.
fn slow()
-> impl Service<Req, Response = Res, Error = Infallible, Future: Send + 'static> + Clone + Send + 'static
{
    service_fn(|_req: Req| async {
        UPSTREAM_CALLS.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    })
}

/// Coalescing when it has work to do: a burst of [`BURST`] requests for one key, each a task
/// of a two-worker runtime, against [`slow`]. Each layer gets three rows: `*_wall`, the wall
/// time of a burst; `*_busy`, the time the runtime's workers were busy during it (the CPU a
/// burst costs; tokio's per-worker busy time, which it adds up when a worker parks, so a
/// sample may miss part of its last burst); and `*_fanout` (see [`fan_out`]). The
/// `one_request_wall` row is a single request to [`slow`], uncoalesced, on the idle runtime.
fn coalesce_burst(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("coalesce_burst");
    g.sample_size(20);
    let by_path = |req: &Req| Some(req.uri().path().to_owned());
    burst(
        &mut g,
        &rt,
        "tollgate",
        CoalesceLayer::new(by_path).layer(slow()),
    );
    burst(
        &mut g,
        &rt,
        "tower_resilience",
        tower_resilience::coalesce::CoalesceLayer::new(|req: &Req| req.uri().path().to_owned())
            .layer(slow()),
    );
    // What one request to the same upstream takes on an idle runtime, no coalescing: the
    // floor of the `*_wall` rows (the 1 ms sleep, at the timer's resolution).
    let alone = slow();
    g.bench_function("one_request_wall", |b| {
        b.iter(|| {
            rt.block_on(async {
                let call = tokio::spawn(alone.clone().oneshot(request()));
                black_box(call.await.unwrap().unwrap())
            })
        })
    });
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = gated(Arc::clone(&gate));
    fan_out(
        &mut g,
        &rt,
        "tollgate",
        &gate,
        CoalesceLayer::new(by_path).layer(upstream),
    );
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = gated(Arc::clone(&gate));
    fan_out(
        &mut g,
        &rt,
        "tower_resilience",
        &gate,
        tower_resilience::coalesce::CoalesceLayer::new(|req: &Req| req.uri().path().to_owned())
            .layer(upstream),
    );
    g.finish();
}

/// An upstream that answers when `gate` lets it.
fn gated(
    gate: Arc<tokio::sync::Semaphore>,
) -> impl Service<Req, Response = Res, Error = Infallible, Future: Send + 'static> + Clone + Send + 'static
{
    service_fn(move |_req: Req| {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.unwrap().forget();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    })
}

/// Counts the requests its service was called with, and says when there are [`BURST`].
#[derive(Clone)]
struct Entered<S> {
    inner: S,
    count: Arc<AtomicU64>,
    all_in: Arc<tokio::sync::Notify>,
}

impl<S: Service<Req>> Service<Req> for Entered<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> S::Future {
        let call = self.inner.call(req);
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == BURST as u64 {
            self.all_in.notify_one();
        }
        call
    }
}

/// `*_fanout`: how long [`BURST`] callers of one key take to get a shared response once it
/// exists. Every request is in (its turn taken) before the upstream may answer; the time runs
/// from the upstream's gate opening to the last caller's answer.
fn fan_out<S>(
    g: &mut Group<'_>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    gate: &tokio::sync::Semaphore,
    svc: S,
) where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: std::fmt::Debug + Send,
{
    let entered = Entered {
        inner: svc,
        count: Arc::new(AtomicU64::new(0)),
        all_in: Arc::new(tokio::sync::Notify::new()),
    };
    g.bench_function(format!("{name}_fanout"), |b| {
        b.iter_custom(|iters| {
            let mut answered = Duration::ZERO;
            for _ in 0..iters {
                answered += rt.block_on(async {
                    entered.count.store(0, Ordering::SeqCst);
                    let all_in = entered.all_in.notified();
                    let tasks: Vec<_> = (0..BURST)
                        .map(|_| tokio::spawn(entered.clone().oneshot(request())))
                        .collect();
                    all_in.await;
                    let start = Instant::now();
                    gate.add_permits(BURST);
                    for task in tasks {
                        black_box(task.await.unwrap().unwrap());
                    }
                    let elapsed = start.elapsed();
                    // The permits no call took: the next burst's call must wait again.
                    gate.forget_permits(gate.available_permits());
                    elapsed
                });
            }
            answered
        })
    });
}

fn burst<S>(g: &mut Group<'_>, rt: &tokio::runtime::Runtime, name: &str, svc: S)
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: std::fmt::Debug + Send,
{
    let metrics = rt.metrics();
    let busy = || {
        (0..metrics.num_workers())
            .map(|worker| metrics.worker_total_busy_duration(worker))
            .sum::<Duration>()
    };
    let bursts = |iters: u64| {
        for _ in 0..iters {
            rt.block_on(one_burst(&svc));
        }
    };
    let (calls, all) = (UPSTREAM_CALLS.load(Ordering::Relaxed), Instant::now());
    let mut ran = 0;
    g.bench_function(format!("{name}_wall"), |b| {
        b.iter_custom(|iters| {
            ran += iters;
            let start = Instant::now();
            bursts(iters);
            start.elapsed()
        })
    });
    g.bench_function(format!("{name}_busy"), |b| {
        b.iter_custom(|iters| {
            ran += iters;
            let before = busy();
            bursts(iters);
            busy().saturating_sub(before)
        })
    });
    // What the rows cost in upstream calls: 1 a burst when every request coalesced.
    if ran == 0 {
        return; // filtered out
    }
    let calls = UPSTREAM_CALLS.load(Ordering::Relaxed) - calls;
    #[allow(clippy::cast_precision_loss)]
    let per_burst = calls as f64 / ran as f64;
    eprintln!(
        "{name}: {per_burst:.3} upstream calls per burst of {BURST} ({ran} bursts, {:.1} s)",
        all.elapsed().as_secs_f64()
    );
}

/// [`BURST`] requests for one key, each in a task of its own; every one must be answered.
async fn one_burst<S>(svc: &S)
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: std::fmt::Debug + Send,
{
    let tasks: Vec<_> = (0..BURST)
        .map(|_| tokio::spawn(svc.clone().oneshot(request())))
        .collect();
    for task in tasks {
        black_box(task.await.unwrap().unwrap());
    }
}

/// What this machine charges for the atomic operations every layer is built from, measured in
/// the same run as the layers, so a row can be read as "so many atomic read-modify-writes, plus
/// the rest". Per request, a layer over an `Arc` handle cloned with its service pays an
/// increment and a decrement for the service's clone and another pair for its response future's
/// handle, on top of its own work (a breaker's compare-and-swap, a bulkhead's take and give);
/// over a `&'static` handle, only its own work. The costs differ up to about 2–3× between
/// machines (`docs/PERFORMANCE.md`, session 13).
fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    let counter = AtomicU64::new(0);
    g.bench_function("atomic_fetch_add", |b| {
        b.iter(|| black_box(&counter).fetch_add(1, Ordering::AcqRel))
    });
    g.bench_function("atomic_compare_exchange", |b| {
        b.iter(|| {
            let counter = black_box(&counter);
            let current = counter.load(Ordering::Acquire);
            counter.compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
        })
    });
    let shared = Arc::new(0u64);
    g.bench_function("arc_clone_drop", |b| {
        b.iter(|| drop(black_box(Arc::clone(black_box(&shared)))))
    });
    g.finish();
}

criterion_group!(
    benches,
    floor,
    small_layers,
    small_layers_reused,
    layers,
    coalesce_burst
);
criterion_main!(benches);
