//! Per-key coalescing: tollgate's `flight` against `moka` (`get_with`) and `async_singleflight`,
//! all in the same run.
//!
//! - `one_key`: 1,000 concurrent callers (spawned tasks) on one key whose work yields once.
//! - `distinct_keys`: 1,000 concurrent callers, each on its own key (throughput).
//!
//! Every iteration uses fresh keys, so moka's cache never answers from a previous iteration.
//!
//! `cargo bench -p tollgate --bench flight`
#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
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

/// Spawns `CALLERS` tasks, caller `i` calling `call(key_of(base, i))`, and waits for all.
async fn fan_out<C, Fut>(base: u64, one_key: bool, call: C)
where
    C: Fn(u64) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let mut callers = JoinSet::new();
    for i in 0..CALLERS {
        callers.spawn(call(if one_key { base } else { base + i }));
    }
    while let Some(done) = callers.join_next().await {
        done.unwrap();
    }
}

/// The shared work: yields once when many callers should find it in flight.
async fn work(key: u64, yields: bool) -> u64 {
    if yields {
        tokio::task::yield_now().await;
    }
    key
}

fn bench_group(c: &mut Criterion, name: &str, one_key: bool) {
    let rt = runtime();
    let next = Arc::new(AtomicU64::new(0));
    let fresh = move || next.fetch_add(CALLERS, Ordering::Relaxed);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(CALLERS));
    g.sample_size(30).measurement_time(Duration::from_secs(6));

    let flight: Flight<u64, u64, ()> = Flight::new();
    g.bench_function("tollgate_flight", |b| {
        b.to_async(&rt).iter(|| {
            let flight = flight.clone();
            fan_out(fresh(), one_key, move |key| {
                let flight = flight.clone();
                async move {
                    let outcome =
                        flight.run(key, move || async move { Ok(work(key, one_key).await) });
                    outcome.await.result.unwrap()
                }
            })
        });
    });

    let cache: moka::future::Cache<u64, u64> = moka::future::Cache::new(100_000);
    g.bench_function("moka_get_with", |b| {
        b.to_async(&rt).iter(|| {
            let cache = cache.clone();
            fan_out(fresh(), one_key, move |key| {
                let cache = cache.clone();
                async move { cache.get_with(key, work(key, one_key)).await }
            })
        });
    });

    let group: Arc<async_singleflight::Group<u64, u64, ()>> = Arc::default();
    g.bench_function("async_singleflight", |b| {
        b.to_async(&rt).iter(|| {
            let group = Arc::clone(&group);
            fan_out(fresh(), one_key, move |key| {
                let group = Arc::clone(&group);
                async move {
                    let work = async move { Ok(work(key, one_key).await) };
                    group.work(&key, work).await.unwrap()
                }
            })
        });
    });
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
