//! PostgreSQL backend for [`tollgate`]'s exactly-once records and outbox: one database shared
//! by every instance of a service. Re-exports `tollgate`, `tokio_postgres` and
//! `deadpool_postgres`, so one dependency line is enough.
//!
//! # Guarantees
//! - **Every operation is one statement, one round trip.** A claim is one prepared
//!   `SELECT * FROM <schema>.once_claim(…)`: a PL/pgSQL function whose write is a single
//!   `INSERT … ON CONFLICT … DO UPDATE … WHERE <takeable> RETURNING`, answering from the row
//!   it locked when the `WHERE` refuses (why a function and not a CTE: see the `sql` module's
//!   source). No check-then-insert and no retry loop: 1,000 concurrent claims — over one or
//!   many pools — acquire a key exactly once (conformance cases
//!   `claim_race_of_1000_tasks_acquires_exactly_once` and `…_over_4_handles_…`). Renew,
//!   complete, fail and resolve are one conditional `UPDATE` each, fenced by owner and fence;
//!   purge deletes in batches of 1,000 rows.
//! - **The server's clock decides**: every statement reads `clock_timestamp()` on the server;
//!   callers pass durations. ([`PinnedTime`] replaces it in tests only.)
//! - **Transactional completion**: [`InTransaction`] runs the work's writes and the fenced
//!   completion in one transaction; [`PostgresStore::complete_in`] completes inside a
//!   transaction the caller opened (tests `transactional::*`).
//! - **Waiters are woken, not polling**: complete, fail and resolve `NOTIFY` the key on
//!   commit; a store built with [`Builder::listen`] (as [`PostgresStore::connect`] is) keeps
//!   one listening connection and wakes [`OnInProgress::Wait`] callers at once, polling only
//!   every 2 s as a backstop against a lost notification (test
//!   `notify::a_waiter_is_woken_by_the_holders_notification_not_by_polling`).
//! - **Migrations are versioned and safe from many instances at once**: one transaction under
//!   `pg_advisory_xact_lock`, in the schema you name ([`Builder::schema`]; test
//!   `migrations::sixteen_instances_starting_together_…`).
//! - **Every call is bounded** by the store's timeout ([`Builder::timeout`], 5 s by default),
//!   and every failure is a [`StoreError`](tollgate::store::StoreError) with a kind mapped from
//!   its SQLSTATE ([`error`]): a killed server is `unavailable` at once, a paused one
//!   `timed_out`, an exhausted pool `busy` after the pool's wait (tests `faults::*`).
//! - **Your pool can be handed in**: [`PostgresStore::builder`] takes a `deadpool_postgres`
//!   pool; the store borrows one connection per call.
//! - **A durable outbox** ([`PgOutbox`], issue 14): effects enqueued inside the caller's
//!   transaction with [`PgOutbox::enqueue_in`] (one statement), claimed with one
//!   `UPDATE … FOR UPDATE SKIP LOCKED` statement so concurrent workers never claim the same
//!   effect, and settled by fenced `UPDATE`s (tests `s4_outbox::*`).
//! - **Leased, fenced locks** ([`PgLockStore`], for [`tollgate::lock`], issue 13): a lease
//!   table (migration 5), one statement per operation, the server's clock; never a
//!   session-level advisory lock. [`fenced_update`] carries the lock's fence into the write so
//!   the protected rows reject a replaced holder (tests `lock_conformance::*`, `s2_*_postgres`
//!   in `tests/s2_lock_fencing.rs`).
//! - S2's two paths: [`versioned::VersionedRows`] (optimistic compare-and-set) and
//!   [`PostgresStore::locked`] (a transaction-level lock, safe behind PgBouncer).
//!
//! Cancellation: dropping an operation's future after its statement was sent does not undo
//! it; each statement commits (or not) atomically either way.
//!
//! [`OnInProgress::Wait`]: tollgate::once::OnInProgress::Wait
//!
//! # Example
//! The same code runs as the test `example::the_crate_example_runs`.
//! ```no_run
//! use tollgate_postgres::PostgresStore;
//! use tollgate_postgres::tollgate::once::{Failure, Fingerprint, Key, Once};
//!
//! # async fn example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
//! // url: "postgres://app@db.internal/app"
//! let once = Once::new(PostgresStore::connect(url).await?);
//! let key = Key::new("daily-report", "user-1/2026-11-21");
//! let paid_call = || async { Ok::<_, Failure<String>>(42) };
//! let first = once.run(key.clone(), Fingerprint::new("v1"), paid_call).await?;
//! let again = once.run(key, Fingerprint::new("v1"), paid_call).await?;
//! assert_eq!((first.value, first.replayed, again.value, again.replayed), (42, false, 42, true));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod commit;
pub mod error;
mod lock;
mod lock_fenced;
mod lock_sql;
mod notify;
mod outbox;
pub mod schema;
mod sql;
mod store;
mod time;
pub mod versioned;

pub use commit::{InTransaction, Writes};
pub use deadpool_postgres;
pub use lock::PgLockStore;
pub use lock_fenced::{FencedUpdateError, fenced_update};
pub use outbox::PgOutbox;
pub use store::{Builder, PostgresStore, pool};
pub use time::PinnedTime;
pub use tokio_postgres;
pub use tollgate;
