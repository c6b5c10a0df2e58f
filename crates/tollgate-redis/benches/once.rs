//! The Redis store against the physical floor of any Redis claim, and against the SQLite and
//! memory stores, in the same run.
//!
//! - `claim_complete`: one claim of a fresh key plus its completion: `redis` (two scripts),
//!   `raw_set_nx_px_then_set` (the same client sending `SET k NX PX` then `SET k v PX`: one
//!   round trip each, no rules), `sqlite` (WAL, `synchronous = FULL`), `postgres` (a
//!   throw-away server, `fsync` on, a pool of 16), `memory`.
//! - `race_1000`: 1,000 tasks claim one fresh key at once; 1 acquires, 999 see it held.
//! - Printed after criterion:
//!   - `interleaved`: 2,000 rounds, each one raw pair and one store claim + complete in turn
//!     (so the shared machine's noise hits both sides of the ratio alike): medians and the
//!     throughput ratio;
//!   - `race_latency`: per-racer latency p50/p99 of 30 races of 1,000 (release to answer)
//!     straight on each store, against the median of one uncontended claim; for Redis also
//!     the same races of raw `SET k NX PX` (the floor: one command per racer, no rules) and
//!     through `Once::run` (racers of one process coalesced: one claim reaches the server).
//!
//! The server is a throw-away `redis-server` on loopback without persistence (the raw pair
//! and the store pay the same), so the ratios measure the scripts, not the disk.
//!
//! `CARGO_TARGET_DIR=target cargo bench -p tollgate-redis --bench once`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use redis::aio::ConnectionManager;
use tokio::runtime::Runtime;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tollgate_postgres::PostgresStore;
use tollgate_redis::tollgate::once::{
    ClaimOutcome, ClaimRequest, Error, Failure, Fingerprint, Key, MemoryStore, OnExpired, Once,
    Owner, Settle, Store,
};
use tollgate_redis::{Durability, RedisStore};
use tollgate_sqlite::SqliteStore;
use tollgate_testkit::server::{PostgresServer, RedisServer};

const RACERS: usize = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn fresh_key(counter: &AtomicU64) -> Key {
    Key::new("bench", counter.fetch_add(1, Ordering::Relaxed).to_string())
}

fn request(key: Key) -> ClaimRequest {
    ClaimRequest {
        key,
        fingerprint: Fingerprint::new("fp"),
        owner: Owner::random(),
        lease: Duration::from_secs(30),
        on_expired: OnExpired::TakeOver,
        waiting_for: None,
    }
}

async fn claim_complete<S: Store>(store: &S, key: Key) {
    let until = Duration::from_secs(3600);
    let ClaimOutcome::Acquired { token, .. } = store.claim(request(key.clone())).await.unwrap()
    else {
        panic!("fresh key not acquired");
    };
    let settled = store.complete(&key, token, b"42".to_vec(), until).await;
    assert_eq!(settled.unwrap(), Settle::Accepted);
}

async fn raw_pair(conn: &ConnectionManager, key: Key) {
    let mut conn = conn.clone();
    let name = key.encode();
    let claimed: Option<String> = redis::cmd("SET")
        .arg(&name)
        .arg("owner")
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(claimed.is_some());
    let () = redis::cmd("SET")
        .arg(&name)
        .arg("42")
        .arg("PX")
        .arg(3_600_000)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// One race: every racer's latency from the common release, and how many acquired.
async fn race_with<F, Fut>(claim: F) -> (Vec<Duration>, usize)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let gate = Arc::new(Barrier::new(RACERS));
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let (claimed, gate) = (claim(), Arc::clone(&gate));
        racers.spawn(async move {
            gate.wait().await;
            let started = Instant::now();
            let won = claimed.await;
            (started.elapsed(), won)
        });
    }
    let (mut latencies, mut acquired) = (Vec::with_capacity(RACERS), 0);
    while let Some(done) = racers.join_next().await {
        let (latency, won) = done.unwrap();
        latencies.push(latency);
        acquired += usize::from(won);
    }
    (latencies, acquired)
}

/// One race of store claims on `key`.
async fn race<S: Store>(store: &Arc<S>, key: Key) -> (Vec<Duration>, usize) {
    race_with(|| {
        let (store, key) = (Arc::clone(store), key.clone());
        async move {
            let outcome = store.claim(request(key)).await.unwrap();
            matches!(outcome, ClaimOutcome::Acquired { .. })
        }
    })
    .await
}

/// One race of raw `SET k owner NX PX` on `key`.
async fn raw_race(conn: &ConnectionManager, key: Key) -> (Vec<Duration>, usize) {
    let name = key.encode();
    race_with(|| {
        let (mut conn, name) = (conn.clone(), name.clone());
        async move {
            let claimed: Option<String> = redis::cmd("SET")
                .arg(&name)
                .arg("owner")
                .arg("NX")
                .arg("PX")
                .arg(30_000)
                .query_async(&mut conn)
                .await
                .unwrap();
            claimed.is_some()
        }
    })
    .await
}

/// One race of `Once::run` on `key` (the racers share one engine, as one process would).
async fn once_race<S: Store>(once: &Once<Arc<S>>, key: Key) -> (Vec<Duration>, usize) {
    race_with(|| {
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
    .await
}

fn bench_store<S: Store>(c: &mut Criterion, rt: &Runtime, name: &str, store: Arc<S>) {
    let keys = AtomicU64::new(0);
    c.benchmark_group("claim_complete")
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(rt)
                .iter(|| claim_complete(&*store, fresh_key(&keys)));
        });
    let mut group = c.benchmark_group("race_1000");
    group.sample_size(20);
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.to_async(rt).iter(|| async {
            let (_, acquired) = race(&store, fresh_key(&keys)).await;
            assert_eq!(acquired, 1);
        });
    });
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

/// The median of one uncontended claim of a fresh key.
fn uncontended<S: Store>(rt: &Runtime, store: &S, keys: &AtomicU64) -> Duration {
    let mut single: Vec<Duration> = (0..500)
        .map(|_| {
            rt.block_on(async {
                let started = Instant::now();
                store.claim(request(fresh_key(keys))).await.unwrap();
                started.elapsed()
            })
        })
        .collect();
    single.sort();
    percentile(&single, 0.5)
}

/// Runs 30 races from `race` (each on a fresh key) and prints per-racer p50/p99 against
/// `one` (an uncontended claim), asserting exactly one execution per race.
fn race_report<Fut>(rt: &Runtime, name: &str, one: Duration, mut race: impl FnMut() -> Fut)
where
    Fut: std::future::Future<Output = (Vec<Duration>, usize)>,
{
    let (mut all, mut executions) = (Vec::new(), 0);
    for _ in 0..30 {
        let (latencies, acquired) = rt.block_on(race());
        assert_eq!(acquired, 1, "{name}: exactly one racer acquires");
        all.extend(latencies);
        executions += acquired;
    }
    all.sort();
    let (p50, p99) = (percentile(&all, 0.5), percentile(&all, 0.99));
    println!(
        "race_latency/{name}: uncontended claim p50 {one:?}; 1,000 racers p50 {p50:?} p99 {p99:?} \
         (p99 = {:.3}x uncontended); executions {executions} in 30 races",
        p99.as_secs_f64() / one.as_secs_f64()
    );
}

/// Per-racer p50/p99 over 30 races of store claims against the median uncontended claim.
fn race_latency<S: Store>(rt: &Runtime, name: &str, store: Arc<S>) {
    let keys = AtomicU64::new(1 << 40);
    let one = uncontended(rt, &*store, &keys);
    race_report(rt, name, one, || race(&store, fresh_key(&keys)));
}

/// Claim + complete against the raw pair, one of each in turn, 2,000 rounds.
fn interleaved(rt: &Runtime, store: &RedisStore, raw: &ConnectionManager) {
    let keys = AtomicU64::new(1 << 45);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..2_000 {
        rt.block_on(async {
            let started = Instant::now();
            raw_pair(raw, fresh_key(&keys)).await;
            floor.push(started.elapsed());
            let started = Instant::now();
            claim_complete(store, fresh_key(&keys)).await;
            ours.push(started.elapsed());
        });
    }
    ours.sort();
    floor.sort();
    let (ours, floor) = (percentile(&ours, 0.5), percentile(&floor, 0.5));
    println!(
        "interleaved/claim_complete: redis {ours:?}, raw SET NX PX + SET {floor:?} (medians of \
         2,000 rounds): throughput {:.2}x the raw pair",
        floor.as_secs_f64() / ours.as_secs_f64()
    );
}

/// The Redis races: the store, the raw `SET NX PX` floor and `Once::run`, in turn.
fn redis_races(rt: &Runtime, store: &Arc<RedisStore>, raw: &ConnectionManager) {
    let keys = AtomicU64::new(1 << 42);
    let one = uncontended(rt, &**store, &keys);
    race_report(rt, "redis", one, || race(store, fresh_key(&keys)));
    race_report(rt, "raw_set_nx_px", one, || raw_race(raw, fresh_key(&keys)));
    let once = Once::new(Arc::clone(store));
    race_report(rt, "redis_once_run", one, || {
        once_race(&once, fresh_key(&keys))
    });
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let redis = rt.block_on(async {
        RedisStore::builder(server.url())
            .durability(Durability::Unchecked)
            .connect()
            .await
            .unwrap()
    });
    let raw = rt.block_on(async {
        let client = redis::Client::open(server.url()).unwrap();
        ConnectionManager::new(client).await.unwrap()
    });
    let keys = AtomicU64::new(1 << 50);
    c.benchmark_group("claim_complete").bench_function(
        BenchmarkId::from_parameter("raw_set_nx_px_then_set"),
        |b| {
            b.to_async(&rt).iter(|| raw_pair(&raw, fresh_key(&keys)));
        },
    );
    let redis = Arc::new(redis);
    bench_store(c, &rt, "redis", Arc::clone(&redis));
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(
        rt.block_on(SqliteStore::open(dir.path().join("bench.db")))
            .unwrap(),
    );
    bench_store(c, &rt, "sqlite", Arc::clone(&sqlite));
    let postgres_server = PostgresServer::start().unwrap_or_else(|e| panic!("{e}"));
    let pool = tollgate_postgres::pool(
        postgres_server.url().parse().unwrap(),
        16,
        Duration::from_secs(30),
    )
    .unwrap();
    let postgres = Arc::new(
        rt.block_on(
            PostgresStore::builder(pool)
                .timeout(Duration::from_secs(30))
                .open(),
        )
        .unwrap(),
    );
    bench_store(c, &rt, "postgres", Arc::clone(&postgres));
    let memory = Arc::new(MemoryStore::new());
    bench_store(c, &rt, "memory", Arc::clone(&memory));
    interleaved(&rt, &redis, &raw);
    redis_races(&rt, &redis, &raw);
    race_latency(&rt, "sqlite", sqlite);
    race_latency(&rt, "postgres", postgres);
    race_latency(&rt, "memory", memory);
}

criterion_group!(once_benches, benches);
criterion_main!(once_benches);
