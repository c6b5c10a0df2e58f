//! Per-key resources and per-key mutexes, whose per-key state never outlives its use.
//!
//! # [`Resources`]: one live resource per key (S1's connection manager done right)
//! [`Resources::get`] hands out the cached resource of a key, or creates it with a
//! [`Factory`]. Guarantees under concurrency:
//! - **At most one creation per key at a time**, whatever the number of callers: creations are
//!   coalesced with [`crate::flight`], so the callers waiting for a creation share its result,
//!   including its error. A failed creation is not cached; the next call tries again.
//! - **The fast path takes no lock shared with other keys**: the cached resources live in a
//!   lock-free map (`papaya`), and a hand-out is a map read plus two atomics on the key's own
//!   entry, followed by the resource's [`Resource::is_healthy`].
//! - **An unhealthy resource is replaced and the replaced one is closed — no zombies.** Every
//!   removal (unhealthy, [`Resources::remove`], [`Resources::evict_idle`], limit pressure) is won
//!   by exactly one caller, which closes the resource in a spawned task: dropping the caller's
//!   future never skips a `close`.
//! - **A limit on live resources** ([`Builder::max_live`]): a creation beyond it first evicts
//!   idle resources, then fails ([`WhenFull::Fail`]) or waits with a deadline ([`WhenFull::Wait`]).
//! - **No per-key state for removed keys**: [`Resources::len`] counts live resources and
//!   [`Resources::creating`] running creations; both return to 0.
//!
//! Cancellation: dropping a `get` never cancels a creation (it is a [`flight`](crate::flight)
//! execution, which moves into a task of its own when its caller is dropped, and its resource
//! is cached for the next caller) nor a close.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
//! use tollgate::keyed::{Resource, Resources};
//!
//! struct Client { healthy: AtomicBool }
//! impl Resource for Client {
//!     async fn is_healthy(&self) -> bool { self.healthy.load(Ordering::SeqCst) }
//!     async fn close(&self) {}
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let opens = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&opens);
//! let clients = Resources::new(move |_id: &u32| {
//!     counter.fetch_add(1, Ordering::SeqCst);
//!     async { Ok::<_, String>(Client { healthy: AtomicBool::new(true) }) }
//! });
//! let a = clients.get(&7).await.unwrap();
//! let b = clients.get(&7).await.unwrap();
//! assert!(Arc::ptr_eq(&a, &b));
//! a.healthy.store(false, Ordering::SeqCst);
//! let c = clients.get(&7).await.unwrap(); // the unhealthy one is closed and replaced
//! assert!(!Arc::ptr_eq(&a, &c));
//! assert_eq!(opens.load(Ordering::SeqCst), 2);
//! assert!(clients.remove(&7).await);
//! assert_eq!((clients.len(), clients.creating()), (0, 0));
//! # }
//! ```
//!
//! # [`Mutex`]: one async mutex per key
//! [`Mutex::lock`] serialises tasks per key while different keys proceed in parallel. A key's
//! state exists only while a task holds or waits for its lock ([`Mutex::len`] is 0 when idle),
//! including when waiters are cancelled. [`Mutex::lock_many`] locks several keys in ascending
//! order, so two callers locking overlapping sets can never deadlock.
//!
//! ```
//! use tollgate::keyed::Mutex;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let locks = Mutex::new();
//! {
//!     let _both = locks.lock_many(["bob", "alice"]).await; // locked as alice, then bob
//!     assert!(locks.try_lock("alice").is_none());
//!     assert!(locks.try_lock("carol").is_some());
//! }
//! assert_eq!(locks.len(), 0);
//! # }
//! ```

mod config;
mod entries;
mod error;
mod mutex;
mod resource;
mod resources;

pub use config::{Builder, WhenFull};
pub use error::Error;
pub use mutex::{Guard, ManyGuard, Mutex};
pub use resource::{Factory, Resource};
pub use resources::Resources;

// The loom models (`tests/loom_*.rs`) reach the per-key slot bookkeeping, which lives in
// `crate::sync::slots`, through this door; it exists only when model-checking.
#[cfg(tollgate_loom)]
#[doc(hidden)]
pub use crate::sync::slots;
