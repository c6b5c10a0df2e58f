//! Outbox costs, SQLite and PostgreSQL in the same run.
//!
//! - `outbox_effects/<backend>/<workers>`: 256 effects through the outbox, enqueue → done:
//!   16 tasks enqueue them (one `enqueue` each, its own transaction), then 1, 4 or 16 workers
//!   (default batch of 16, a no-op handler) claim and complete them until none is left.
//!   Criterion's throughput is effects per second. `<backend>_per_effect` is the same backend
//!   with `complete_all` replaced by one concurrent `complete` per effect (one commit each,
//!   as the worker wrote them before batching). `memory/<workers>` is the worker's own cost,
//!   no I/O (a fresh `MemoryOutbox` per iteration).
//! - `outbox_enqueue/<backend>`: the enqueue half alone (256 effects from 16 tasks, left
//!   pending).
//! - `enqueue_in_tx/<backend>/<shape>/<round>`: a caller's transaction with one `INSERT`
//!   (`insert_only`), the same plus a second `INSERT` into another table of the application
//!   (`insert_twice`: what one more statement costs at the least), plus `enqueue_in`
//!   (`insert_and_enqueue`), and on PostgreSQL plus `enqueue_in_pooled`
//!   (`insert_and_enqueue_pooled`: the statement taken from the connection's cache), and the
//!   same with the application's `INSERT` and the enqueue sent together
//!   (`insert_and_enqueue_pipelined`: `tokio::join!` of both, one round trip for the two).
//!   Twenty rounds of all shapes in short windows (½ s each): this machine's load moves
//!   within a run by up to 3×, so each shape is compared with `insert_only` of the same round
//!   (measured about a second apart) and those ratios are summarised over the rounds.
//!
//! - `peers` (printed after criterion, not a criterion group): the same 256 effects, enqueue →
//!   done, by tollgate and by the job queues `underway` and `apalis` (`apalis-postgres`) on the
//!   same PostgreSQL server, one round of each in turn ([`PEER_ROUNDS`] rounds per worker
//!   count), medians printed. The peers are programs of their own under `peers/` (their `sqlx`
//!   cannot share this workspace's lock file with `rusqlite`: both link SQLite); build them
//!   first, or the report says they are missing:
//!   `cargo build --release --manifest-path peers/underway-outbox/Cargo.toml` (and
//!   `peers/apalis-outbox`).
//!
//! SQLite: WAL, `synchronous = FULL`. PostgreSQL: a throw-away server on loopback started by
//! the benchmark, `fsync` on (both pay an fsync per commit), a pool of 32 connections.
//!
//! `CARGO_TARGET_DIR=target cargo bench -p tollgate-postgres --bench outbox` (add `-- peers`
//! for the peer report alone).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tollgate_postgres::tokio_postgres::types::ToSql;
use tollgate_postgres::tollgate::outbox::{
    Claimed, Completion, DeadLetter, Effect, EffectId, EffectRecord, MemoryOutbox, Outbox,
    OutboxStats, Worker, WorkerOptions,
};
use tollgate_postgres::tollgate::store::{Key, Owner, Settle, StoreError, Token};
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

/// `S` with the batch completion undone: one `complete` (one commit) per effect, each in a
/// task of its own, as the worker's attempt tasks wrote them before batching.
#[derive(Clone)]
struct PerEffect<S>(S);

impl<S: Outbox + Clone> Outbox for PerEffect<S> {
    async fn enqueue(&self, effect: Effect) -> Result<EffectId, StoreError> {
        self.0.enqueue(effect).await
    }
    async fn claim(&self, w: Owner, l: Duration, n: usize) -> Result<Vec<Claimed>, StoreError> {
        self.0.claim(w, l, n).await
    }
    async fn heartbeat(&self, id: EffectId, t: Token, l: Duration) -> Result<Settle, StoreError> {
        self.0.heartbeat(id, t, l).await
    }
    async fn complete(&self, id: EffectId, t: Token, r: Vec<u8>) -> Result<Settle, StoreError> {
        self.0.complete(id, t, r).await
    }
    async fn complete_all(&self, all: Vec<Completion>) -> Result<Vec<Settle>, StoreError> {
        let each = all
            .into_iter()
            .map(|c| self.0.complete(c.id, c.token, c.receipt));
        futures_util::future::join_all(each)
            .await
            .into_iter()
            .collect()
    }
    async fn retry(
        &self,
        id: EffectId,
        t: Token,
        e: String,
        a: Duration,
    ) -> Result<Settle, StoreError> {
        self.0.retry(id, t, e, a).await
    }
    async fn dead_letter(&self, id: EffectId, t: Token, e: String) -> Result<Settle, StoreError> {
        self.0.dead_letter(id, t, e).await
    }
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.0.dead_letters(limit).await
    }
    async fn requeue(&self, id: EffectId) -> Result<bool, StoreError> {
        self.0.requeue(id).await
    }
    async fn read(&self, id: EffectId) -> Result<Option<EffectRecord>, StoreError> {
        self.0.read(id).await
    }
    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        self.0.stats().await
    }
}

fn worker<S: Outbox + Clone>(outbox: &S) -> Worker<S> {
    let noop = |_: Effect, _| async { Ok(Vec::new()) };
    Worker::new(outbox.clone(), WorkerOptions::default()).handler("noop", noop)
}

/// Enqueues [`EFFECTS`] effects from [`PRODUCERS`] tasks, one `enqueue` (one transaction)
/// each.
async fn enqueue_all<S: Outbox + Clone>(outbox: &S, keys: &AtomicU64) {
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
}

/// Enqueues [`EFFECTS`] effects, then drains them with `workers`; returns the time taken,
/// having checked that every effect was applied.
async fn through<S: Outbox + Clone>(
    outbox: &S,
    workers: &[Worker<S>],
    keys: &AtomicU64,
) -> Duration {
    let started = Instant::now();
    enqueue_all(outbox, keys).await;
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

/// `outbox_enqueue/<backend>`: the enqueue half of `outbox_effects` alone (the effects are
/// left pending), the floor under its time whatever the workers do.
fn bench_enqueue_only(c: &mut Criterion, rt: &Runtime, sqlite: &SqliteOutbox, pg: &PgOutbox) {
    let keys = AtomicU64::new(1 << 50);
    let mut group = c.benchmark_group("outbox_enqueue");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.throughput(Throughput::Elements(EFFECTS));
    group.bench_function("sqlite", |b| {
        b.to_async(rt).iter(|| enqueue_all(sqlite, &keys));
    });
    group.bench_function("postgres", |b| {
        b.to_async(rt).iter(|| enqueue_all(pg, &keys));
    });
    group.finish();
}

/// `outbox_effects/memory/<workers>`: the worker's own cost (claims, attempt and handler
/// tasks, lease keepers, batch completion) with no I/O, on a fresh `MemoryOutbox` each time
/// (its claim scans every record it ever held).
fn bench_memory(c: &mut Criterion, rt: &Runtime) {
    let keys = AtomicU64::new(0);
    let mut group = c.benchmark_group("outbox_effects");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.throughput(Throughput::Elements(EFFECTS));
    for workers in [1, 4, 16] {
        group.bench_function(BenchmarkId::new("memory", workers), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let keys = &keys;
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let outbox = MemoryOutbox::new();
                        let pool: Vec<_> = (0..workers).map(|_| worker(&outbox)).collect();
                        total += through(&outbox, &pool, keys).await;
                    }
                    total
                }
            });
        });
    }
    group.finish();
}

/// `outbox_effects/<name>/<workers>` next to `outbox_effects/<name>_per_effect/<workers>` for
/// 1, 4 and 16 workers: each pair measured back to back, so the two see the same load.
fn bench_throughput<S: Outbox + Clone>(c: &mut Criterion, rt: &Runtime, name: &str, outbox: &S) {
    let keys = AtomicU64::new(0);
    let mut group = c.benchmark_group("outbox_effects");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.throughput(Throughput::Elements(EFFECTS));
    let per_effect = PerEffect(outbox.clone());
    for workers in [1, 4, 16] {
        drain_with(
            &mut group,
            rt,
            BenchmarkId::new(name, workers),
            outbox,
            workers,
            &keys,
        );
        let id = BenchmarkId::new(format!("{name}_per_effect"), workers);
        drain_with(&mut group, rt, id, &per_effect, workers, &keys);
    }
    group.finish();
}

fn drain_with<S: Outbox + Clone>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: BenchmarkId,
    outbox: &S,
    workers: usize,
    keys: &AtomicU64,
) {
    let pool: Vec<_> = (0..workers).map(|_| worker(outbox)).collect();
    group.bench_function(id, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let (outbox, pool) = (outbox.clone(), pool.clone());
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

/// What the caller's transaction of `enqueue_in_tx` does besides its one `INSERT`.
#[derive(Clone, Copy)]
enum Shape {
    Alone,
    SecondInsert,
    Enqueue,
    EnqueuePooled,
    EnqueuePipelined,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Alone => "insert_only",
            Shape::SecondInsert => "insert_twice",
            Shape::Enqueue => "insert_and_enqueue",
            Shape::EnqueuePooled => "insert_and_enqueue_pooled",
            Shape::EnqueuePipelined => "insert_and_enqueue_pipelined",
        }
    }
}

async fn sqlite_tx(outbox: &SqliteOutbox, n: u64, shape: Shape) {
    let outbox2 = outbox.clone();
    outbox
        .store()
        .call(move |c| {
            let tx = c.transaction()?;
            tx.prepare_cached("INSERT INTO app (v) VALUES (?1)")?
                .execute([n.to_string()])?;
            match shape {
                Shape::Alone => {}
                Shape::SecondInsert => {
                    tx.prepare_cached("INSERT INTO app2 (v) VALUES (?1)")?
                        .execute([n.to_string()])?;
                }
                Shape::Enqueue | Shape::EnqueuePooled | Shape::EnqueuePipelined => {
                    outbox2.enqueue_in(&tx, &effect(n))?;
                }
            }
            tx.commit()
        })
        .await
        .unwrap();
}

async fn postgres_tx(outbox: &PgOutbox, n: u64, shape: Shape) {
    let mut client = outbox.store().pool().get().await.unwrap();
    let schema = outbox.store().schema();
    let insert = format!("INSERT INTO {schema}.app (v) VALUES ($1)");
    let statement = client.prepare_cached(&insert).await.unwrap();
    let tx = client.transaction().await.unwrap();
    let v = n.to_string();
    if let Shape::EnqueuePipelined = shape {
        // Both statements sent before either answer is awaited: one round trip for the two.
        let (params, effect): (&[&(dyn ToSql + Sync)], _) = (&[&v], effect(n));
        let (inserted, enqueued) = tokio::join!(
            tx.execute(&statement, params),
            outbox.enqueue_in_pooled(&tx, &effect)
        );
        inserted.unwrap();
        enqueued.unwrap();
        return tx.commit().await.unwrap();
    }
    tx.execute(&statement, &[&v]).await.unwrap();
    match shape {
        Shape::Alone => {}
        Shape::SecondInsert => {
            let insert = format!("INSERT INTO {schema}.app2 (v) VALUES ($1)");
            let statement = tx.prepare_cached(&insert).await.unwrap();
            tx.execute(&statement, &[&n.to_string()]).await.unwrap();
        }
        Shape::Enqueue => {
            outbox.enqueue_in(&tx, &effect(n)).await.unwrap();
        }
        Shape::EnqueuePooled | Shape::EnqueuePipelined => {
            outbox.enqueue_in_pooled(&tx, &effect(n)).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

/// Rounds of `enqueue_in_tx`: every shape is measured once per round, in a short window, the
/// shapes of a round back to back (their order rotated from round to round), so the load of
/// one window weighs on every shape and a shape compares with `insert_only` of its round.
const ROUNDS: usize = 20;

fn bench_enqueue_in(c: &mut Criterion, rt: &Runtime, sqlite: &SqliteOutbox, pg: &PgOutbox) {
    let keys = AtomicU64::new(1 << 40);
    let mut group = c.benchmark_group("enqueue_in_tx");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(500));
    let shapes = [
        Shape::Alone,
        Shape::SecondInsert,
        Shape::Enqueue,
        Shape::EnqueuePooled,
        Shape::EnqueuePipelined,
    ];
    for round in 0..ROUNDS {
        for at in 0..shapes.len() {
            let shape = shapes[(round + at) % shapes.len()];
            if !matches!(shape, Shape::EnqueuePooled | Shape::EnqueuePipelined) {
                let id = BenchmarkId::new(format!("sqlite/{}", shape.name()), round + 1);
                group.bench_function(id, |b| {
                    b.to_async(rt)
                        .iter(|| sqlite_tx(sqlite, keys.fetch_add(1, Ordering::Relaxed), shape));
                });
            }
            let id = BenchmarkId::new(format!("postgres/{}", shape.name()), round + 1);
            group.bench_function(id, |b| {
                b.to_async(rt)
                    .iter(|| postgres_tx(pg, keys.fetch_add(1, Ordering::Relaxed), shape));
            });
        }
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
        let table = "CREATE TABLE app (id INTEGER PRIMARY KEY, v TEXT); \
                     CREATE TABLE app2 (id INTEGER PRIMARY KEY, v TEXT)";
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
        let s = store.schema();
        let table = format!(
            "CREATE TABLE {s}.app (id bigserial PRIMARY KEY, v text); \
             CREATE TABLE {s}.app2 (id bigserial PRIMARY KEY, v text)"
        );
        let client = store.pool().get().await.unwrap();
        client.batch_execute(&table).await.unwrap();
        PgOutbox::new(&store)
    });
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref() == Some("peers") {
        return peers_report(&rt, &pg, &server.url());
    }
    // Throughput first: every effect in the outbox is then one of its own, counted exactly.
    bench_memory(c, &rt);
    bench_throughput(c, &rt, "sqlite", &sqlite);
    bench_throughput(c, &rt, "postgres", &pg);
    bench_enqueue_only(c, &rt, &sqlite, &pg);
    bench_enqueue_in(c, &rt, &sqlite, &pg);
    if filter.is_none() {
        peers_report(&rt, &pg, &server.url());
    }
}

/// Rounds of the peer report, per worker count.
const PEER_ROUNDS: usize = 5;

/// The peer programs: name and path of the release binary.
const PEERS: [(&str, &str); 2] = [
    (
        "underway",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../peers/underway-outbox/target/release/underway-outbox"
        ),
    ),
    (
        "apalis",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../peers/apalis-outbox/target/release/apalis-outbox"
        ),
    ),
];

/// One round of a peer program against `url`: its effects per second.
fn peer_round(binary: &str, url: &str, workers: usize) -> f64 {
    let output = std::process::Command::new(binary)
        .args(["--url", url, "--effects", &EFFECTS.to_string()])
        .args([
            "--producers",
            &PRODUCERS.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .args(["--rounds", "1", "--warmup", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{binary} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split_whitespace()
        .find_map(|field| field.strip_prefix("effects_per_s="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no effects_per_s in {stdout:?}"))
}

/// tollgate, `underway` and `apalis` doing the same job on the same server, interleaved.
fn peers_report(rt: &Runtime, pg: &PgOutbox, url: &str) {
    let available: Vec<_> = PEERS
        .iter()
        .filter(|(name, path)| {
            let built = std::path::Path::new(path).exists();
            if !built {
                println!(
                    "peer {name} not built: cargo build --release --manifest-path \
                     peers/{name}-outbox/Cargo.toml"
                );
            }
            built
        })
        .collect();
    // Apply what the earlier groups left pending (`outbox_enqueue`, `enqueue_in_tx`), untimed,
    // so every round below drains exactly its own effects.
    rt.block_on(async {
        let options = WorkerOptions {
            batch: 256,
            ..WorkerOptions::default()
        };
        let drainer = Worker::new(pg.clone(), options)
            .handler("noop", |_: Effect, _| async { Ok(Vec::new()) });
        while drainer.run_batch().await.unwrap().claimed > 0 {}
    });
    let keys = AtomicU64::new(1 << 60);
    println!(
        "\npeers: {EFFECTS} effects, enqueue -> done, same PostgreSQL, medians of {PEER_ROUNDS} \
         interleaved rounds (effects/s)"
    );
    for workers in [1, 4, 16] {
        let pool: Vec<_> = (0..workers).map(|_| worker(pg)).collect();
        let mut tollgate = Vec::new();
        let mut peers = vec![Vec::new(); available.len()];
        // One untimed round of tollgate first, as each peer program warms up once.
        rt.block_on(through(pg, &pool, &keys));
        for _ in 0..PEER_ROUNDS {
            let took = rt.block_on(through(pg, &pool, &keys));
            tollgate.push(EFFECTS as f64 / took.as_secs_f64());
            for (rates, (_, path)) in peers.iter_mut().zip(&available) {
                rates.push(peer_round(path, url, workers));
            }
        }
        let mut line = format!(
            "  workers {workers:>2}: tollgate {:>7.0}",
            median_of(tollgate)
        );
        for (rates, (name, _)) in peers.into_iter().zip(&available) {
            line.push_str(&format!("  {name} {:>7.0}", median_of(rates)));
        }
        println!("{line}");
    }
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .nresamples(20_000)
}

criterion_group! {
    name = outbox_benches;
    config = config();
    targets = benches
}
criterion_main!(outbox_benches);
