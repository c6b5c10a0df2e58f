//! Exactly-once costs, memory and SQLite in the same run.
//!
//! - `claim_complete`: one claim of a fresh key plus its completion, straight on the store.
//! - `run`: `Once::run` of a fresh key with a trivial work (admission, flight, claim, work,
//!   serialize, complete, decode).
//! - `race_1000`: 1,000 spawned tasks claim one fresh key at once; the iteration ends when all
//!   1,000 have their answer (1 acquired, 999 in progress).
//!
//! SQLite runs on a temporary file in WAL mode with `synchronous = FULL` (an fsync per commit).
//!
//! `cargo bench -p tollgate-sqlite --bench once`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tollgate_sqlite::SqliteStore;
use tollgate_sqlite::tollgate::once::{Failure, Fingerprint, MemoryStore, Once, Store};
use tollgate_testkit::bench::{claim_complete, fresh_key, race};

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
    group.sample_size(20);
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.to_async(rt).iter(|| race(&store, fresh_key(&keys)));
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    bench_store(c, &rt, "memory", MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt
        .block_on(SqliteStore::open(dir.path().join("bench.db")))
        .unwrap();
    bench_store(c, &rt, "sqlite", sqlite);
}

criterion_group!(once_benches, benches);
criterion_main!(once_benches);
