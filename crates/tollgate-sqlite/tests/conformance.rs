//! The store conformance suite on [`SqliteStore`], unchanged from every other backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;
use tollgate_sqlite::SqliteStore;

/// Fresh stores, each in its own file of one temporary directory.
struct Files {
    dir: TempDir,
    next: AtomicUsize,
}

impl Files {
    fn new() -> Arc<Self> {
        Arc::new(Files {
            dir: tempfile::tempdir().unwrap(),
            next: AtomicUsize::new(0),
        })
    }

    async fn store(&self) -> SqliteStore {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.path().join(format!("once-{n}.db"));
        SqliteStore::open(path).await.unwrap()
    }
}

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let files = Files::new();
    tollgate_testkit::conformance(|| files.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_1000_concurrent_claims_acquire_exactly_once() {
    let files = Files::new();
    tollgate_testkit::claim_race(files.store().await, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_1000_claims_through_four_connections_acquire_exactly_once() {
    let files = Files::new();
    let first = files.store().await;
    // Four connections to one file: the claims now also race through SQLite's own locking.
    let path = files.dir.path().join("once-0.db");
    let mut stores = vec![first];
    for _ in 0..3 {
        stores.push(SqliteStore::open(&path).await.unwrap());
    }
    tollgate_testkit::claim_race_across(stores, 1_000).await;
}

#[tokio::test]
async fn sqlite_engine_replays_rejects_and_stores_failures() {
    let files = Files::new();
    tollgate_testkit::run_replays_rejects_and_stores_failures(files.store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wait_mode_polls_a_holder_on_another_connection() {
    let files = Files::new();
    let holder = files.store().await;
    let waiter = SqliteStore::open(files.dir.path().join("once-0.db"))
        .await
        .unwrap();
    tollgate_testkit::wait_mode_polls_a_holder_in_another_engine(holder, waiter).await;
}
