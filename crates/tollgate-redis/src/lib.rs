//! Redis backend for [`tollgate`]'s exactly-once records: [`RedisStore`], on one server or a
//! Redis Cluster. Re-exports `tollgate` (and `redis`), so one dependency line is enough.
//!
//! # Guarantees
//! - **Every operation is one Lua script** (run by `EVALSHA`, loaded on first use and again
//!   on `NOSCRIPT`) applying the shared rules of [`tollgate::once::transition`]: claim (with
//!   `waiting_for` and every [`OnExpired`](tollgate::once::OnExpired)), renew, complete,
//!   fail, resolve, and the purge of one key. Redis runs a script alone, so 1,000 concurrent
//!   claims — over one connection or many, from one process or many — acquire a key exactly
//!   once (conformance `claim_race_of_1000_tasks_*`, on a server and on a cluster).
//! - **The server's clock decides**: every script reads `TIME`; callers pass durations only.
//!   (Tests replace it with [`ManualTime`]; production never does.)
//! - **Every key expires** (`PEXPIRE`, on the server's clock): a finished record at its
//!   retention plus [`Builder::expiry_grace`], an attempt in progress at its lease plus
//!   [`Builder::lapsed_retention`], one marked unknown after the lapsed retention. A record is
//!   one string key, `<prefix>{<namespace length>:<namespace><key>}` holding its values in
//!   MessagePack (a fresh claim is one `SET … NX GET PX` inside the script; Redis 7.0 or later,
//!   checked on connect), and its fence is one of them:
//!   there is no fence counter that could outlive it (test
//!   `ten_thousand_keys_completed_and_past_retention_leave_zero_keys`).
//! - **Redis Cluster**: every script touches the one hash-tagged key of its record; purge
//!   scans every primary (the conformance suite runs unchanged on a 3-primary cluster,
//!   `tests/cluster.rs`).
//! - **Waiters are woken by pub/sub**: settling publishes the record's key on
//!   `<prefix>settled`; [`Store::await_change`](tollgate::once::Store::await_change) returns
//!   as soon as it arrives, polling with the engine's backoff only as a backstop (test
//!   `a_waiter_is_woken_when_the_holder_completes_not_by_its_backstop`).
//! - **Every call is bounded** by [`Builder::timeout`] (default 3 s) and fails with a typed
//!   [`StoreErrorKind`](tollgate::store::StoreErrorKind): refused or dropped connections →
//!   `Unavailable`, no answer in time → `TimedOut` (the operation may have taken effect),
//!   `BUSY`/`LOADING`/`TRYAGAIN`/`CLUSTERDOWN` → `Busy`, a record that does not decode →
//!   `Corrupt`, `READONLY`/`NOPERM`/a refused durability → `Rejected` (tests/faults.rs).
//! - **Leased, fenced locks** ([`RedisLockStore`], for [`tollgate::lock`], issue 13): one
//!   Lua script per operation on the server's clock; the fence counter is a field of the
//!   lock's one hash-tagged key and expires with it. [`fenced_hset`] makes a protected hash
//!   reject a replaced holder's write (tests `lock_conformance::*` on a server and on a
//!   3-primary cluster, `tests/lock_cluster.rs`; `s2_*_redis` in `tests/s2_lock_fencing.rs`).
//! - **No transactional completion**: Redis holds no user transaction to commit the work's
//!   writes with the completion, so [`Commit`](tollgate::once::Commit) does not apply:
//!   `Once::run` works, `run_committed` is not offered.
//!
//! Cancellation: dropping an operation's future after the script was sent does not stop it;
//! the script runs (or not) atomically either way.
//!
//! # Durability
//! Redis acknowledges a write before it reaches the disk unless told otherwise, and a lost
//! claim or completion can mean a second paid call. [`Builder::durability`] says what the
//! store requires; it checks `appendonly`/`appendfsync` on every primary when it connects and
//! refuses a server that contradicts it ([`DurabilityRefused`], kind `Rejected`).
//!
//! | server setting | what a crash of the server can lose | for exactly-once | how to detect |
//! |---|---|---|---|
//! | `appendonly yes`, `appendfsync always` ([`Durability::Fsync`], the default) | nothing acknowledged | a completed key replays after the restart; the work is not run again (test `with_appendfsync_always_a_sigkill_loses_no_completed_record`) | — |
//! | `appendonly yes`, `appendfsync everysec` ([`Durability::EverySecond`]) | about the last second of acknowledged writes | a claim or completion of that second may vanish: the key runs again (a second paid call), or a holder's completion is fenced | records younger than ~1 s at a crash are suspect; the server log shows the crash |
//! | no AOF (RDB snapshots or nothing; [`Durability::Unchecked`]) | everything since the last snapshot, or every record | any key may run again after a restart | `INFO server` `run_id` changes at every start: compare [`RedisStore::server_run_ids`] with the last one seen; a new id on a server without AOF means the records are gone (test `without_persistence_a_sigkill_loses_the_records_and_the_run_id_tells`) |
//!
//! Replication does not change the table: a replica promoted after a crash may lack the last
//! acknowledged writes (Redis replicates asynchronously; `WAIT` is not used).
//!
//! # Example
//! A doctest cannot start a server: the same code runs as the test `tests/example.rs`.
//!
//! ```no_run
//! use tollgate_redis::RedisStore;
//! use tollgate_redis::tollgate::once::{Failure, Fingerprint, Key, Once};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The server must run with `appendonly yes` and `appendfsync always` (Durability::Fsync).
//! let once = Once::new(RedisStore::connect("redis://127.0.0.1:6380").await?);
//! let key = Key::new("daily-report", "user-1/2026-11-21");
//! let paid_call = || async { Ok::<_, Failure<String>>(42) };
//! let first = once.run(key.clone(), Fingerprint::new("v1"), paid_call).await?;
//! let again = once.run(key, Fingerprint::new("v1"), paid_call).await?;
//! assert_eq!((first.value, first.replayed, again.value, again.replayed), (42, false, 42, true));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod builder;
mod codec;
mod conn;
mod durability;
pub mod error;
mod keys;
mod lock;
mod lock_fenced;
mod lock_scripts;
mod scripts;
mod store;
mod time;
mod wake;

pub use builder::Builder;
pub use durability::Durability;
pub use error::DurabilityRefused;
pub use lock::RedisLockStore;
pub use lock_fenced::fenced_hset;
pub use redis;
pub use store::RedisStore;
pub use time::ManualTime;
pub use tollgate;
