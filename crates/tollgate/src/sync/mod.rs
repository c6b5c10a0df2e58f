//! Synchronisation primitives, swapped for loom's under `cfg(tollgate_loom)` so the model tests
//! in `tests/loom_*.rs` explore every interleaving of the real code.
//!
//! The cfg is called `tollgate_loom`, not `loom`: tokio changes its own internals under
//! `cfg(loom)` and would not build as a dependency with that flag set.
//!
//! [`slots`] is the per-key bookkeeping of [`crate::flight`] and [`crate::keyed::Mutex`], built on
//! these primitives. It lives here, below both, so that `flight` does not depend on `keyed`
//! (`keyed::Resources` is built on `flight`, so the dependency between them points one way).

#[cfg(not(tollgate_loom))]
pub(crate) mod slots;
// Public (behind the crate-private `sync`) only when model-checking, so that `crate::keyed`
// can open a door to it for `tests/loom_*.rs`.
#[cfg(tollgate_loom)]
pub mod slots;

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
