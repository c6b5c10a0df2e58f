//! Leased locks with fencing tokens the protected resource enforces.
//!
//! [`Locks::acquire`] takes a key for a lease and returns a [`LockGuard`] carrying a
//! [`Fence`](crate::store::Fence) and a lost-lease signal; the lease is renewed while the
//! guard lives and the key released when it is dropped or [`released`](LockGuard::release).
//! A lock alone cannot stop a holder that was paused past its lease (a GC pause, a stalled VM)
//! from writing after the next holder: **the resource must check the fence**. Carry
//! [`LockGuard::fence`] into every write and let the resource reject a write whose fence is
//! lower than the last one it accepted — `tollgate_sqlite::fenced_update` does that in one
//! SQL statement.
//!
//! # Guarantees
//! - **At most one live holder per key**: an acquisition is one atomic step on the store
//!   ([`LockStore`]), so 500 tasks racing for a key get exactly one guard (conformance case
//!   `try_acquire_race_of_500_tasks_has_exactly_one_holder`).
//! - **Fences strictly increase per key**, across releases and take-overs: a released record
//!   keeps its fence (`fence_strictly_increases_over_1000_cycles`).
//! - **Leases are judged by the store's clock**: an expired lease is taken over exactly at its
//!   end on the store's time, with the next fence (`expired_lease_is_taken_over_at_its_end`).
//! - **Release is owner-checked**: owner (a random 128-bit [`Owner`](crate::store::Owner))
//!   and fence must match; otherwise nothing changes and the answer is
//!   [`LockError::NotHolder`] (`release_by_a_non_holder_is_rejected`).
//! - **A holder is told when its lease is lost**: [`LockGuard::lost`] fires when the store
//!   rejects a renewal, or when none succeeded for nine tenths of the lease — while the lease
//!   is still live on the store (`lost_signal_fires_when_the_store_fences_the_holder`; with
//!   the store paused, `s2_holder_is_told_before_its_lease_ends_when_the_server_is_paused_postgres`
//!   and `…_store_is_paused_redis`).
//! - **Waiters of one process are served in arrival order**, and a holder releasing a key a
//!   local task waits for hands it over in one store step ([`LockStore::hand_over`]: the
//!   next fence, no round trip for the waiter), letting the waiter in as the step is sent so
//!   its wake-up overlaps the round trip; the holder never waits for the waiter
//!   (`tests/lock_handoff.rs`); only the first waiter polls the store, with backoff
//!   (`waiters_of_one_process_are_served_in_arrival_order` in `tests/lock_waiters.rs`).
//! - **A paused holder's stale write is rejected by the resource**:
//!   `s2_paused_holder_stale_write_is_rejected_by_the_fence` in `tollgate-sqlite`.
//!
//! # Metrics
//! Through the `metrics` facade: `tollgate_lock_acquisitions_total` (labels `namespace`,
//! `outcome` = `acquired` / `held` / `timed_out` / `failed`), `tollgate_lock_contended_total`
//! (`namespace`: acquisitions that found the key held, counted once per call) and
//! `tollgate_lock_lost_total` (`namespace`, `reason` = `fenced` / `expired`); test
//! `lock_metrics::acquisitions_contention_and_lost_leases_are_counted`.
//!
//! Cancellation: dropping [`Locks::acquire`] before it returns holds nothing and leaves the
//! queue (`a_cancelled_waiter_leaves_the_queue`); dropping a guard releases the key in a
//! spawned task (`a_dropped_guard_releases_its_key_to_another_process`).
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use tollgate::lock::{Locks, MemoryLockStore, Wait};
//! use tollgate::store::Key;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tollgate::lock::LockError> {
//! let locks = Locks::new(MemoryLockStore::new());
//! let key = Key::new("wallet", "user-1");
//! let guard = locks.acquire(key.clone(), Duration::from_secs(10), Wait::Fail).await?;
//! assert!(locks.try_acquire(key.clone(), Duration::from_secs(10)).await?.is_none());
//! let (fence, lost) = (guard.fence(), guard.lost()); // carry the fence into the write
//! tokio::select! {
//!     reason = lost.wait() => panic!("lost the lock: {reason}"),
//!     () = async { /* the protected work, writing with `fence` */ } => {}
//! }
//! guard.release().await?;
//! let next = locks.acquire(key, Duration::from_secs(10), Wait::Fail).await?;
//! assert!(next.fence() > fence);
//! # Ok(())
//! # }
//! ```

mod baton;
mod error;
mod fenced;
mod guard;
mod locks;
mod memory;
mod record;
mod renewals;
mod store;
pub mod transition;

pub use error::{LockError, LockErrorKind};
pub use fenced::{FencedSqlError, Placeholders, fenced_update_sql};
pub use guard::LockGuard;
pub use locks::{Locks, Wait};
pub use memory::MemoryLockStore;
pub use record::{Acquisition, LockRecord, LockState, Release};
pub use store::LockStore;
