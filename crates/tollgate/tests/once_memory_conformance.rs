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
