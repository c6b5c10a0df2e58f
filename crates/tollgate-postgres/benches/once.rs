//! Exactly-once costs, memory, SQLite and PostgreSQL in the same run.
//!
//! - `claim_complete`: one claim of a fresh key plus its completion, straight on the store.
//! - `run`: `Once::run` of a fresh key with a trivial work.
//! - `race_1000`: 1,000 spawned tasks claim one fresh key at once, straight on the store; the
//!   iteration ends when all 1,000 have their answer (1 acquired, 999 in progress).
//!
//! Before criterion runs, a report for PostgreSQL: the server transactions and `once_claim`
//! calls per claim (the round-trip count), one uncontended claim's latency, and the p99 of
//! 1,000 racers on one key — through `Once::run` (coalesced in process: 1 execution) and
//! straight on the store (1,000 claims on the server) — with their ratios.
//!
//! SQLite: WAL, `synchronous = FULL`. PostgreSQL: a throw-away server on loopback, `fsync`
//! on (both pay an fsync per commit), a pool of 16 connections.
//!
//! `CARGO_TARGET_DIR=target cargo bench -p tollgate-postgres --bench once`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tollgate_postgres::PostgresStore;
use tollgate_postgres::tollgate::once::{
    ClaimOutcome, Error, Failure, Fingerprint, MemoryStore, Once, Store,
};
use tollgate_sqlite::SqliteStore;
use tollgate_testkit::bench::{self, claim_complete, fresh_key, race, request};
use tollgate_testkit::release_together;
use tollgate_testkit::server::PostgresServer;

const RACERS: usize = bench::RACERS as usize;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn bench_store<S: Store>(c: &mut Criterion, rt: &Runtime, name: &str, store: S) {
    let store = Arc::new(store);
    let once = Once::new(Arc::clone(&store));
    let keys = AtomicU64::new(0);
    c.benchmark_group("claim_complete")
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(rt)
                .iter(|| claim_complete(&*store, fresh_key(&keys)));
        });
    c.benchmark_group("run")
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(rt).iter(|| async {
                let work = || async { Ok::<_, Failure<String>>(42_u32) };
                once.run(fresh_key(&keys), Fingerprint::new("fp"), work)
                    .await
                    .unwrap()
            });
        });
    let mut group = c.benchmark_group("race_1000");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.to_async(rt).iter(|| race(&store, fresh_key(&keys)));
    });
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Each racer's latency from its release (all are released together) to its answer, sorted.
async fn racers<F, Fut>(claim: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let timed = release_together(RACERS, |_| {
        let claimed = claim();
        async move {
            let released = Instant::now();
            let acquired = claimed.await;
            (acquired, released.elapsed())
        }
    })
    .await;
    let executions = timed.iter().filter(|(acquired, _)| *acquired).count();
    assert_eq!(executions, 1, "exactly one execution");
    let mut latencies: Vec<_> = timed.into_iter().map(|(_, latency)| latency).collect();
    latencies.sort_unstable();
    latencies
}

/// The statistics once every backend has flushed `calls` or more `once_claim` calls
/// (backends flush their statistics lazily, up to seconds later).
async fn flushed(admin: &tollgate_postgres::tokio_postgres::Client, calls: i64) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = counters(admin).await;
        if now.1 >= calls || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn counters(admin: &tollgate_postgres::tokio_postgres::Client) -> (i64, i64) {
    let sql = "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'), \
               coalesce((SELECT calls FROM pg_stat_user_functions WHERE funcname = 'once_claim'), 0)";
    admin
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    let row = admin.query_one(sql, &[]).await.unwrap();
    (row.get(0), row.get(1))
}

/// The PostgreSQL report: round trips per claim, uncontended latency, racers' p99.
async fn report(store: &Arc<PostgresStore>, url: &str) {
    let (admin, connection) =
        tollgate_postgres::tokio_postgres::connect(url, tollgate_postgres::tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let keys = AtomicU64::new(1_000_000);
    let warm_up = 200;
    for _ in 0..warm_up {
        store.claim(request(fresh_key(&keys))).await.unwrap(); // warm the statement caches
    }
    let claims = 1_000;
    let before = flushed(&admin, warm_up).await;
    let mut latencies = Vec::with_capacity(claims);
    for _ in 0..claims {
        let started = Instant::now();
        store.claim(request(fresh_key(&keys))).await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort_unstable();
    let after = flushed(&admin, before.1 + claims as i64).await;
    let one = percentile(&latencies, 0.5);
    println!(
        "postgres claim: {:.2} server transactions and {:.2} once_claim calls per claim \
         (1 prepared statement, 1 round trip); uncontended p50 {one:?}, p99 {:?}",
        (after.0 - before.0) as f64 / claims as f64,
        (after.1 - before.1) as f64 / claims as f64,
        percentile(&latencies, 0.99),
    );
    let once = Once::new(Arc::clone(store));
    let key = fresh_key(&keys);
    let coalesced = racers(|| {
        let (once, key) = (once.clone(), key.clone());
        async move {
            let work = || async { Ok::<_, Failure<String>>(1_u8) };
            match once.run(key, Fingerprint::new("fp"), work).await {
                Ok(done) => !done.replayed,
                Err(Error::Conflict) => false,
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    let key = fresh_key(&keys);
    let raw = racers(|| {
        let (store, key) = (Arc::clone(store), key.clone());
        async move {
            let outcome = store.claim(request(key)).await.unwrap();
            matches!(outcome, ClaimOutcome::Acquired { .. })
        }
    })
    .await;
    for (name, sorted) in [
        ("Once::run (coalesced in process)", &coalesced),
        ("store.claim (1,000 on the server)", &raw),
    ] {
        let p99 = percentile(sorted, 0.99);
        println!(
            "postgres race of {RACERS} on one key via {name}: 1 execution, p50 {:?}, p99 {p99:?} \
             = {:.1}x one uncontended claim",
            percentile(sorted, 0.5),
            p99.as_secs_f64() / one.as_secs_f64()
        );
    }
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    bench_store(c, &rt, "memory", MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt
        .block_on(SqliteStore::open(dir.path().join("bench.db")))
        .unwrap();
    bench_store(c, &rt, "sqlite", sqlite);
    let options =
        tollgate_testkit::server::PostgresOptions::new().setting("track_functions", "all");
    let server: PostgresServer = options.start().unwrap();
    let config = server.url().parse().unwrap();
    let pool = tollgate_postgres::pool(config, 16, Duration::from_secs(30)).unwrap();
    let store = rt
        .block_on(
            PostgresStore::builder(pool)
                .timeout(Duration::from_secs(30))
                .open(),
        )
        .unwrap();
    let store = Arc::new(store);
    rt.block_on(report(&store, &server.url()));
    bench_store(c, &rt, "postgres", store);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = once_benches;
    config = config();
    targets = benches
}
criterion_main!(once_benches);
