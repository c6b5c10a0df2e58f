//! S3 at library level on the in-memory store: 100 requests for one (user, day), released by a
//! start gate, pay the dummy LLM exactly once.

use tollgate::once::MemoryStore;
use tollgate_testkit::s3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_one_engine_calls_the_llm_once_and_conflicts_99() {
    let store = MemoryStore::new();
    s3::one_engine(store.clone()).await;
    assert_eq!(store.len(), 1, "one stored report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_engine_per_request_calls_the_llm_once_and_conflicts_99() {
    let store = MemoryStore::new();
    s3::engine_per_request(store.clone()).await;
    assert_eq!(store.len(), 1, "one stored report");
}
