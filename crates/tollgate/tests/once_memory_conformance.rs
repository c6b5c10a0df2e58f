//! The store conformance suite on [`MemoryStore`](tollgate::once::MemoryStore), unchanged from
//! every other backend: `cargo test -p tollgate --test once_memory_conformance` lists one test
//! per case.

use tollgate_testkit::MemoryBackend;

async fn memory() -> MemoryBackend {
    MemoryBackend::new()
}

tollgate_testkit::conformance!(memory);
