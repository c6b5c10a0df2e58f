//! Per-key coalescing: tollgate's `flight` against `moka` (`get_with`) and `async_singleflight`,
//! all in the same run.
//!
//! - `one_key`: 1,000 concurrent callers (spawned tasks) on one key. The work waits until every
//!   caller has been polled once (registered as leader or joiner), so each iteration measures
//!   1,000 callers coalescing onto one execution rather than a mix of short executions.
//! - `distinct_keys`: 1,000 concurrent callers, each on its own key (throughput); the work
//!   returns at once.
//!
//! Every iteration uses fresh keys, so moka's cache never answers from a previous iteration.
//!
//! `cargo bench -p tollgate --bench flight`
#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tollgate::flight::Flight;

const CALLERS: u64 = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Opens once every caller of an iteration has been polled once.
struct Burst {
    registered: AtomicU64,
    executions: AtomicU64,
    gate: watch::Sender<bool>,
}

impl Burst {
    fn new() -> Arc<Self> {
        Arc::new(Burst {
            registered: AtomicU64::new(0),
            executions: AtomicU64::new(0),
            gate: watch::Sender::new(false),
        })
    }

    fn arrive(&self) {
        if self.registered.fetch_add(1, Ordering::SeqCst) + 1 == CALLERS {
            self.gate.send_replace(true);
        }
    }

    /// The shared work: on one key it waits for the whole burst, then returns `key`.
    async fn work(self: Arc<Self>, key: u64, one_key: bool) -> u64 {
        self.executions.fetch_add(1, Ordering::SeqCst);
        if one_key {
            let _ = self.gate.subscribe().wait_for(|open| *open).await;
        }
        key
    }
}

/// Executions per iteration of one implementation, printed with its figures: a coalescer that
/// lets callers slip past a running execution does more work per iteration.
struct Tally {
    name: &'static str,
    /// Whether exactly one execution per key is asserted (tollgate's guarantee).
    exact: bool,
    iterations: AtomicU64,
    executions: AtomicU64,
}

impl Tally {
    fn new(name: &'static str, exact: bool) -> Self {
        Tally {
            name,
            exact,
            iterations: AtomicU64::new(0),
            executions: AtomicU64::new(0),
        }
    }

    fn report(&self) {
        let iterations = self.iterations.load(Ordering::SeqCst).max(1);
        let executions = self.executions.load(Ordering::SeqCst);
        #[allow(clippy::cast_precision_loss)]
        let per_iteration = executions as f64 / iterations as f64;
        println!("{}: {per_iteration:.1} executions per iteration", self.name);
    }
}

/// Spawns `CALLERS` tasks, caller `i` calling `call(key, burst)`, and waits for all.
async fn fan_out<C, Fut>(tally: &Tally, base: u64, one_key: bool, call: C)
where
    C: Fn(u64, Arc<Burst>) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let burst = Burst::new();
    let mut callers = JoinSet::new();
    for i in 0..CALLERS {
        let key = if one_key { base } else { base + i };
        let (call, burst) = (call(key, Arc::clone(&burst)), Arc::clone(&burst));
        callers.spawn(async move {
            let mut call = pin!(call);
            let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
            burst.arrive();
            match first {
                Poll::Ready(value) => value,
                Poll::Pending => call.await,
            }
        });
    }
    while let Some(done) = callers.join_next().await {
        done.unwrap();
    }
    let executions = burst.executions.load(Ordering::SeqCst);
    if tally.exact || !one_key {
        assert_eq!(executions, if one_key { 1 } else { CALLERS });
    }
    tally.iterations.fetch_add(1, Ordering::SeqCst);
    tally.executions.fetch_add(executions, Ordering::SeqCst);
}

fn bench_group(c: &mut Criterion, name: &str, one_key: bool) {
    let rt = runtime();
    let next = Arc::new(AtomicU64::new(0));
    let fresh = move || next.fetch_add(CALLERS, Ordering::Relaxed);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(CALLERS));
    g.sample_size(30).measurement_time(Duration::from_secs(6));

    let flight: Flight<u64, u64, ()> = Flight::new();
    let tally = Tally::new("tollgate_flight", true);
    g.bench_function(tally.name, |b| {
        b.to_async(&rt).iter(|| {
            let flight = flight.clone();
            fan_out(&tally, fresh(), one_key, move |key, burst| {
                let flight = flight.clone();
                async move {
                    let work = move || async move { Ok(burst.work(key, one_key).await) };
                    flight.run(key, work).await.result.unwrap()
                }
            })
        });
    });
    tally.report();

    let cache: moka::future::Cache<u64, u64> = moka::future::Cache::new(100_000);
    let tally = Tally::new("moka_get_with", false);
    g.bench_function(tally.name, |b| {
        b.to_async(&rt).iter(|| {
            let cache = cache.clone();
            fan_out(&tally, fresh(), one_key, move |key, burst| {
                let cache = cache.clone();
                async move { cache.get_with(key, burst.work(key, one_key)).await }
            })
        });
    });
    tally.report();

    let group: Arc<async_singleflight::Group<u64, u64, ()>> = Arc::default();
    let tally = Tally::new("async_singleflight", false);
    g.bench_function(tally.name, |b| {
        b.to_async(&rt).iter(|| {
            let group = Arc::clone(&group);
            fan_out(&tally, fresh(), one_key, move |key, burst| {
                let group = Arc::clone(&group);
                async move {
                    let work = async move { Ok(burst.work(key, one_key).await) };
                    group.work(&key, work).await.unwrap()
                }
            })
        });
    });
    tally.report();
    g.finish();
}

fn one_key(c: &mut Criterion) {
    bench_group(c, "flight_one_key_1000_callers", true);
}

fn distinct_keys(c: &mut Criterion) {
    bench_group(c, "flight_distinct_keys_1000_callers", false);
}

criterion_group!(benches, one_key, distinct_keys);
criterion_main!(benches);
