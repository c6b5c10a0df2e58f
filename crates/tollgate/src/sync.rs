//! Synchronisation primitives, swapped for loom's under `cfg(tollgate_loom)` so the model tests
//! in `tests/loom_*.rs` explore every interleaving of the real code.
//!
//! The cfg is called `tollgate_loom`, not `loom`: tokio changes its own internals under
//! `cfg(loom)` and would not build as a dependency with that flag set.

#[cfg(not(tollgate_loom))]
pub(crate) use std::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicU64, Ordering},
};

#[cfg(tollgate_loom)]
pub(crate) use loom::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicU64, Ordering},
};
