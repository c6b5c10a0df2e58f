//! SQLite backend for [`tollgate`]'s exactly-once records: the embedded, durable default for a
//! single node. Re-exports `tollgate` (and `rusqlite`), so one dependency line is enough.
//!
//! # Guarantees
//! - **Every operation is one atomic step**: a claim, renew, complete or fail runs in one
//!   `BEGIN IMMEDIATE` transaction (the database write lock is taken before the record is
//!   read) applying the shared rules of [`tollgate::once::transition`]; a purge is one
//!   `DELETE`. No check-then-insert, so 1,000 concurrent claims — from tasks or from processes
//!   sharing the file — acquire the key exactly once.
//! - **Durable**: WAL journal with `synchronous = FULL`; a completed record survives a crash of
//!   the process or of the machine.
//! - **Never blocks the async runtime**: each [`SqliteStore`] owns one connection on its own
//!   thread and async callers hand it closures over a channel. One connection serialises this
//!   store's operations, which SQLite's single writer does anyway; a busy database (another
//!   process writing) makes that thread wait up to the busy timeout (5 s by default), never a
//!   runtime worker. Open several stores on one file for parallel reads.
//! - Records are keyed by the pair (namespace, key) in two columns.
//! - **Locks** ([`SqliteLockStore`], for [`tollgate::lock`]) live in their own table with the
//!   same one-transaction-per-operation rule, and [`fenced_update`] makes the protected rows
//!   reject a stale holder's write.
//!
//! Cancellation: dropping an operation's future does not roll back a statement already handed
//! to the connection thread; the operation completes (or not) atomically either way.
//!
//! # Example
//! ```
//! use tollgate_sqlite::SqliteStore;
//! use tollgate_sqlite::tollgate::once::{Failure, Fingerprint, Key, Once};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("tollgate-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let once = Once::new(SqliteStore::open(dir.join("once.db")).await?);
//! let key = Key::new("daily-report", "user-1/2026-11-21");
//! let paid_call = || async { Ok::<_, Failure<String>>(42) };
//! let first = once.run(key.clone(), Fingerprint::new("v1"), paid_call).await?;
//! let again = once.run(key, Fingerprint::new("v1"), paid_call).await?;
//! assert_eq!((first.value, first.replayed, again.value, again.replayed), (42, false, 42, true));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod commit;
pub mod error;
mod fenced;
mod lock;
mod outbox;
mod schema;
mod store;
mod worker;

pub use commit::InTransaction;
pub use fenced::{FencedUpdateError, fenced_update, fenced_update_sql};
pub use lock::SqliteLockStore;
pub use outbox::SqliteOutbox;
pub use rusqlite;
pub use store::{Builder, SqliteStore};
pub use tollgate;
