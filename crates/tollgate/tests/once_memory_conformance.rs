//! The store conformance suite on [`MemoryStore`], unchanged from every other backend.

use tollgate::once::MemoryStore;

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    tollgate_testkit::conformance(|| async { MemoryStore::new() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_1000_concurrent_claims_acquire_exactly_once() {
    tollgate_testkit::claim_race(MemoryStore::new(), 1_000).await;
}

#[tokio::test]
async fn memory_engine_replays_rejects_and_stores_failures() {
    tollgate_testkit::run_replays_rejects_and_stores_failures(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_wait_mode_polls_a_holder_in_another_engine() {
    let store = MemoryStore::new();
    tollgate_testkit::wait_mode_polls_a_holder_in_another_engine(store.clone(), store).await;
}
