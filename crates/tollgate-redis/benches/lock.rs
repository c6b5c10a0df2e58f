//! `tollgate::lock` on every backend, and Redis against the `rslock` crate (Redlock), in the
//! same run.
//!
//! - `lock_acquire_release`: one uncontended `Locks::acquire` (`Wait::Fail`) plus
//!   `LockGuard::release` of one key: `memory`, `sqlite` (WAL, `synchronous = FULL`),
//!   `postgres` (a throw-away server, `fsync` on), `redis`; and `rslock` — `LockManager::lock`
//!   plus `unlock` on the **same** throw-away `redis-server` (one instance: quorum 1).
//! - `lock_acquire`: the acquisition alone (the release is outside the timing).
//! - `lock_handoff`: a task of the same process waits in `acquire` (`Wait::Until`) while the
//!   holder holds the key (queued before the release, without idling); timed from the
//!   holder's `release()` call until the waiter holds it.
//! - Printed after criterion: medians of the same operations measured **interleaved** (one
//!   of each in turn, so the shared machine's noise hits both sides alike), once from
//!   `block_on`'s thread (as criterion's rows) and once in a task on a runtime worker, and
//!   the ratios the
//!   issue sets targets for: rslock / tollgate on Redis (target ≥ 1.5) and hand-off / one
//!   uncontended acquire (target ≤ 2), per backend.
//!
//! `CARGO_TARGET_DIR=target cargo bench -p tollgate-redis --bench lock`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tollgate_postgres::{PgLockStore, PostgresStore};
use tollgate_redis::tollgate::lock::{LockStore, Locks, MemoryLockStore, Wait};
use tollgate_redis::tollgate::store::Key;
use tollgate_redis::{Durability, RedisLockStore, RedisStore};
use tollgate_sqlite::{SqliteLockStore, SqliteStore};
use tollgate_testkit::server::{PostgresServer, RedisServer};

const LEASE: Duration = Duration::from_secs(30);
/// Rounds of the interleaved report.
const ROUNDS: usize = 400;

fn key() -> Key {
    Key::new("bench", "wallet-1")
}

async fn acquire_release<S: LockStore>(locks: &Locks<S>) {
    let guard = locks.acquire(key(), LEASE, Wait::Fail).await.unwrap();
    guard.release().await.unwrap();
}

/// One acquisition's latency (the release is not timed).
async fn acquire_alone<S: LockStore>(locks: &Locks<S>) -> Duration {
    let started = Instant::now();
    let guard = locks.acquire(key(), LEASE, Wait::Fail).await.unwrap();
    let took = started.elapsed();
    guard.release().await.unwrap();
    took
}

/// One hand-off: from the holder's `release()` call until the waiting task holds the key. The
/// waiter is queued behind the holder before the release (its acquisition polled once, then it
/// signals), so nothing idles in between: a sleep there left the core idle and measured the
/// return from idle (caches and a parked worker: 20-40 µs even on the memory store) instead of
/// the hand-off.
async fn handoff<S: LockStore>(locks: &Locks<S>) -> Duration {
    let holder = locks.acquire(key(), LEASE, Wait::Fail).await.unwrap();
    let waiting = locks.clone();
    let (queued_tx, queued) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut acquire = std::pin::pin!(waiting.acquire(key(), LEASE, Wait::Until(deadline)));
        let first = std::future::poll_fn(|cx| Poll::Ready(acquire.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "the key is held: the waiter queues");
        queued_tx.send(()).unwrap();
        let guard = acquire.await;
        (guard.unwrap(), Instant::now())
    });
    queued.await.unwrap();
    let released = Instant::now();
    holder.release().await.unwrap();
    let (guard, entered) = waiter.await.unwrap();
    guard.release().await.unwrap();
    entered - released
}

async fn rslock_pair(manager: &rslock::LockManager) {
    let lock = manager.lock("bench:rslock:wallet-1", LEASE).await.unwrap();
    manager.unlock(&lock).await;
}

fn bench_backend<S: LockStore>(c: &mut Criterion, rt: &Runtime, name: &str, locks: &Locks<S>) {
    c.benchmark_group("lock_acquire_release").bench_function(
        BenchmarkId::from_parameter(name),
        |b| {
            b.to_async(rt).iter(|| acquire_release(locks));
        },
    );
    c.benchmark_group("lock_acquire")
        .bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += acquire_alone(locks).await;
                }
                total
            });
        });
    let mut group = c.benchmark_group("lock_handoff");
    group.sample_size(20);
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += handoff(locks).await;
            }
            total
        });
    });
    group.finish();
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// Medians of acquire + release, acquire alone and hand-off, measured interleaved.
async fn report<S: LockStore>(name: &str, locks: &Locks<S>) -> Duration {
    let (mut pairs, mut alone, mut handoffs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        acquire_release(locks).await;
        pairs.push(started.elapsed());
        alone.push(acquire_alone(locks).await);
        if handoffs.len() < ROUNDS / 4 {
            handoffs.push(handoff(locks).await);
        }
    }
    let (pair, alone, handoff) = (median(pairs), median(alone), median(handoffs));
    let ratio = handoff.as_secs_f64() / alone.as_secs_f64();
    println!(
        "{name:>8}: acquire+release {pair:>10.1?}  acquire {alone:>10.1?}  hand-off {handoff:>10.1?}  \
         hand-off / acquire {ratio:.2} (target <= 2)"
    );
    pair
}

/// Medians of tollgate's and rslock's acquire + release on one server, interleaved.
async fn report_rslock(locks: &Locks<RedisLockStore>, manager: &rslock::LockManager) {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let started = Instant::now();
        acquire_release(locks).await;
        ours.push(started.elapsed());
        let started = Instant::now();
        rslock_pair(manager).await;
        theirs.push(started.elapsed());
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
    println!(
        "   redis: tollgate acquire+release {ours:.1?}, rslock lock+unlock {theirs:.1?}: \
         tollgate {ratio:.2}x faster (target >= 1.5)"
    );
}

fn benches(c: &mut Criterion) {
    let rt = tollgate_testkit::bench::runtime();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let postgres = PostgresServer::start().unwrap_or_else(|e| panic!("{e}"));
    let (memory, sqlite, pg, redis_locks, manager) = rt.block_on(async {
        let sqlite = SqliteStore::open(dir.path().join("locks.db"))
            .await
            .unwrap();
        let store = RedisStore::builder(redis.url())
            .durability(Durability::Unchecked)
            .connect()
            .await
            .unwrap();
        let pg = PostgresStore::connect(&postgres.url()).await.unwrap();
        (
            Locks::new(MemoryLockStore::new()),
            Locks::new(SqliteLockStore::new(sqlite).await.unwrap()),
            Locks::new(PgLockStore::new(pg)),
            Locks::new(RedisLockStore::new(store)),
            rslock::LockManager::new(vec![redis.url()]),
        )
    });
    bench_backend(c, &rt, "memory", &memory);
    bench_backend(c, &rt, "sqlite", &sqlite);
    bench_backend(c, &rt, "postgres", &pg);
    bench_backend(c, &rt, "redis", &redis_locks);
    c.benchmark_group("lock_acquire_release").bench_function(
        BenchmarkId::from_parameter("rslock"),
        |b| {
            b.to_async(&rt).iter(|| rslock_pair(&manager));
        },
    );

    // Twice: from `block_on`'s thread (as criterion's rows), where every wake-up of a
    // runtime worker is a cross-thread hop, and in a task on a worker, where a service's
    // holders and waiters run.
    let all = Arc::new((memory, sqlite, pg, redis_locks, manager));
    rt.block_on(report_all("from block_on", Arc::clone(&all)));
    rt.block_on(rt.spawn(report_all("on a worker thread", all)))
        .unwrap();
}

type Backends = (
    Locks<MemoryLockStore>,
    Locks<SqliteLockStore>,
    Locks<PgLockStore>,
    Locks<RedisLockStore>,
    rslock::LockManager,
);

/// The interleaved report of every backend, then tollgate against rslock.
async fn report_all(place: &str, all: Arc<Backends>) {
    let (memory, sqlite, pg, redis, manager) = &*all;
    println!(
        "\ninterleaved medians, {ROUNDS} rounds (hand-off: {} rounds), {place}",
        ROUNDS / 4
    );
    report("memory", memory).await;
    report("sqlite", sqlite).await;
    report("postgres", pg).await;
    report("redis", redis).await;
    report_rslock(redis, manager).await;
}

criterion_group!(lock, benches);
criterion_main!(lock);
