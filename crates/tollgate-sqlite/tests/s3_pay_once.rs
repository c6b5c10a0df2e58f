//! S3 at library level on SQLite: 100 requests for one (user, day), released by a start gate,
//! pay the dummy LLM exactly once and leave one stored report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_sqlite::SqliteStore;
use tollgate_testkit::s3;

async fn count_records(store: &SqliteStore) -> i64 {
    store
        .call(|conn| conn.query_row("SELECT COUNT(*) FROM tollgate_once", [], |r| r.get(0)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_one_engine_on_sqlite_calls_the_llm_once_and_conflicts_99() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s3.db")).await.unwrap();
    s3::one_engine(store.clone()).await;
    assert_eq!(count_records(&store).await, 1, "one stored report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_engine_per_request_on_sqlite_calls_the_llm_once_and_conflicts_99() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s3.db")).await.unwrap();
    s3::engine_per_request(store.clone()).await;
    assert_eq!(count_records(&store).await, 1, "one stored report");
}
