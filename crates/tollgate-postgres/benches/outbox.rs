//! Outbox costs, SQLite and PostgreSQL in the same run.
//!
//! - `outbox_effects/<backend>/<workers>`: 256 effects through the outbox, enqueue → done:
//!   16 tasks enqueue them (one `enqueue` each, its own transaction), then 1, 4 or 16 workers
//!   (default batch of 16, a no-op handler) claim and complete them until none is left.
//!   Criterion's throughput is effects per second.
//! - `enqueue_in_tx/<backend>/<shape>`: a caller's transaction with one `INSERT`
//!   (`insert_only`) vs the same plus `enqueue_in` (`insert_and_enqueue`).
//!
//! SQLite: WAL, `synchronous = FULL`. PostgreSQL: a throw-away server on loopback started by
//! the benchmark, `fsync` on (both pay an fsync per commit), a pool of 32 connections.
//!
//! `CARGO_TARGET_DIR=target cargo bench -p tollgate-postgres --bench outbox`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tollgate_postgres::tollgate::outbox::{Effect, Outbox, Worker, WorkerOptions};
use tollgate_postgres::tollgate::store::Key;
use tollgate_postgres::{PgOutbox, PostgresStore};
use tollgate_sqlite::{SqliteOutbox, SqliteStore};
use tollgate_testkit::server::{PostgresOptions, PostgresServer};

/// Effects per `outbox_effects` iteration.
const EFFECTS: u64 = 256;
/// Tasks enqueuing them.
const PRODUCERS: u64 = 16;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn effect(n: u64) -> Effect {
    Effect::new("noop", Key::new("bench", n.to_string()), &n).unwrap()
}

fn worker<S: Outbox + Clone>(outbox: &S) -> Worker<S> {
    let noop = |_: Effect, _| async { Ok(Vec::new()) };
    Worker::new(outbox.clone(), WorkerOptions::default()).handler("noop", noop)
}

/// Enqueues [`EFFECTS`] effects from [`PRODUCERS`] tasks, then drains them with `workers`;
/// returns the time taken, having checked that every effect was applied.
async fn through<S: Outbox + Clone>(
    outbox: &S,
    workers: &[Worker<S>],
    keys: &AtomicU64,
) -> Duration {
    let started = Instant::now();
    let mut producers = JoinSet::new();
    for _ in 0..PRODUCERS {
        let outbox = outbox.clone();
        let first = keys.fetch_add(EFFECTS / PRODUCERS, Ordering::Relaxed);
        producers.spawn(async move {
            for n in first..first + EFFECTS / PRODUCERS {
                outbox.enqueue(effect(n)).await.unwrap();
            }
        });
    }
    producers.join_all().await;
    let mut draining = JoinSet::new();
    for worker in workers {
        let worker = worker.clone();
        draining.spawn(async move {
            let mut done = 0;
            loop {
                let batch = worker.run_batch().await.unwrap();
                if batch.claimed == 0 {
                    return done;
                }
                done += batch.done as u64;
            }
        });
    }
    let done: u64 = draining.join_all().await.into_iter().sum();
    let elapsed = started.elapsed();
    assert_eq!(done, EFFECTS, "every effect applied once");
    elapsed
}

fn bench_throughput<S: Outbox + Clone>(c: &mut Criterion, rt: &Runtime, name: &str, outbox: &S) {
    let keys = AtomicU64::new(0);
    let mut group = c.benchmark_group("outbox_effects");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.throughput(Throughput::Elements(EFFECTS));
    for workers in [1, 4, 16] {
        let pool: Vec<_> = (0..workers).map(|_| worker(outbox)).collect();
        let id = BenchmarkId::new(name, workers);
        group.bench_function(id, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let (outbox, pool, keys) = (outbox.clone(), pool.clone(), &keys);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += through(&outbox, &pool, keys).await;
                    }
                    total
                }
            });
        });
    }
    group.finish();
}

async fn sqlite_tx(outbox: &SqliteOutbox, n: u64, enqueue: bool) {
    let outbox2 = outbox.clone();
    outbox
        .store()
        .call(move |c| {
            let tx = c.transaction()?;
            tx.execute("INSERT INTO app (v) VALUES (?1)", [n.to_string()])?;
            if enqueue {
                outbox2.enqueue_in(&tx, &effect(n))?;
            }
            tx.commit()
        })
        .await
        .unwrap();
}

async fn postgres_tx(outbox: &PgOutbox, n: u64, enqueue: bool) {
    let mut client = outbox.store().pool().get().await.unwrap();
    let insert = format!(
        "INSERT INTO {}.app (v) VALUES ($1)",
        outbox.store().schema()
    );
    let statement = client.prepare_cached(&insert).await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(&statement, &[&n.to_string()]).await.unwrap();
    if enqueue {
        outbox.enqueue_in(&tx, &effect(n)).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn bench_enqueue_in(c: &mut Criterion, rt: &Runtime, sqlite: &SqliteOutbox, pg: &PgOutbox) {
    let keys = AtomicU64::new(1 << 40);
    let mut group = c.benchmark_group("enqueue_in_tx");
    for (shape, enqueue) in [("insert_only", false), ("insert_and_enqueue", true)] {
        group.bench_function(BenchmarkId::new("sqlite", shape), |b| {
            b.to_async(rt)
                .iter(|| sqlite_tx(sqlite, keys.fetch_add(1, Ordering::Relaxed), enqueue));
        });
        group.bench_function(BenchmarkId::new("postgres", shape), |b| {
            b.to_async(rt)
                .iter(|| postgres_tx(pg, keys.fetch_add(1, Ordering::Relaxed), enqueue));
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt.block_on(async {
        let store = SqliteStore::open(dir.path().join("bench.db"))
            .await
            .unwrap();
        let table = "CREATE TABLE app (id INTEGER PRIMARY KEY, v TEXT)";
        store.call(move |c| c.execute_batch(table)).await.unwrap();
        SqliteOutbox::new(store).await.unwrap()
    });
    let server: PostgresServer = PostgresOptions::new().start().unwrap();
    let pg = rt.block_on(async {
        let config = server.url().parse().unwrap();
        let pool = tollgate_postgres::pool(config, 32, Duration::from_secs(30)).unwrap();
        let store = PostgresStore::builder(pool)
            .timeout(Duration::from_secs(30))
            .open()
            .await
            .unwrap();
        let table = format!(
            "CREATE TABLE {}.app (id bigserial PRIMARY KEY, v text)",
            store.schema()
        );
        let client = store.pool().get().await.unwrap();
        client.batch_execute(&table).await.unwrap();
        PgOutbox::new(&store)
    });
    // Throughput first: every effect in the outbox is then one of its own, counted exactly.
    bench_throughput(c, &rt, "sqlite", &sqlite);
    bench_throughput(c, &rt, "postgres", &pg);
    bench_enqueue_in(c, &rt, &sqlite, &pg);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = outbox_benches;
    config = config();
    targets = benches
}
criterion_main!(outbox_benches);
