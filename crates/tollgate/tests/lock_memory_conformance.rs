//! The lock conformance suite on [`MemoryLockStore`](tollgate::lock::MemoryLockStore):
//! `cargo test -p tollgate --test lock_memory_conformance` lists one test per case.

use tollgate_testkit::MemoryLockBackend;

async fn memory() -> MemoryLockBackend {
    MemoryLockBackend::new()
}

tollgate_testkit::lock_conformance!(memory);
