//! The [`Store`] trait: where exactly-once records live.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::record::{ClaimOutcome, ClaimRequest, Record, Resolution};
use crate::store::{Key, Settle, StoreError, Token};

/// Durable (or in-memory) storage of exactly-once records.
///
/// **Every method is one atomic step on the backend** — a map operation under a lock, one
/// `BEGIN IMMEDIATE` transaction, one `INSERT … ON CONFLICT … RETURNING` statement, one Lua
/// script — never a read followed by a separate write. The rules each step applies are the
/// functions of [`transition`](super::transition); the `tollgate-testkit` conformance suite
/// checks a backend against them, including under 1,000 concurrent claims.
///
/// **Times are the store's own.** Callers pass leases and retention as durations; the store
/// adds them to its current time and judges expiry by the same time (see
/// [`crate::store`]), so callers whose clocks disagree still agree on every lease.
pub trait Store: Send + Sync + 'static {
    /// Claims `req.key` (see [`transition::claim`](super::transition::claim)).
    fn claim(
        &self,
        req: ClaimRequest,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Extends the holder's lease to `lease` from the store's now.
    fn renew(
        &self,
        key: &Key,
        token: Token,
        lease: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Stores the holder's serialized result, kept for `retention`.
    fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Stores the holder's serialized failure, kept for `retention`; a retryable one frees the
    /// key for the next claim.
    fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        retention: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Settles the attempt of unknown outcome held by `previous` (see
    /// [`transition::resolve`](super::transition::resolve)): fenced for a live holder or a
    /// record that changed hands.
    fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// The key's record, if any.
    fn read(&self, key: &Key) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Removes every finished record whose retention ended by the store's now; returns how
    /// many. Attempts in progress or of unknown outcome are never purged.
    fn purge(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Whether [`await_change`](Store::await_change) is woken by the backend when a holder
    /// settles (PostgreSQL `LISTEN/NOTIFY`), so a waiter needs to poll only as a backstop
    /// against a lost notification. `false` by default: waiters poll with backoff.
    fn wakes_waiters(&self) -> bool {
        false
    }

    /// A waiter's pause between two claims of `key`, which a claim sent at `since` found in
    /// progress: resolves when the holder may have settled, and after `within` at the latest.
    /// The default sleeps `within`; a backend that announces settled keys resolves as soon as
    /// `key` was announced after `since`.
    fn await_change(
        &self,
        key: &Key,
        since: Instant,
        within: Duration,
    ) -> impl Future<Output = ()> + Send {
        let _ = (key, since);
        tokio::time::sleep(within)
    }
}

/// A shared store is a store: engines in one process (or tests) can share one by `Arc`.
impl<S: Store> Store for Arc<S> {
    fn claim(
        &self,
        req: ClaimRequest,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send {
        (**self).claim(req)
    }

    fn renew(
        &self,
        key: &Key,
        token: Token,
        lease: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).renew(key, token, lease)
    }

    fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).complete(key, token, result, retention)
    }

    fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        retention: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).fail(key, token, error, retryable, retention)
    }

    fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).resolve(key, previous, resolution, retention)
    }

    fn read(&self, key: &Key) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        (**self).read(key)
    }

    fn purge(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge()
    }

    fn wakes_waiters(&self) -> bool {
        (**self).wakes_waiters()
    }

    fn await_change(
        &self,
        key: &Key,
        since: Instant,
        within: Duration,
    ) -> impl Future<Output = ()> + Send {
        (**self).await_change(key, since, within)
    }
}
