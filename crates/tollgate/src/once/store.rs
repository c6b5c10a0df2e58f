//! The [`Store`] trait: where exactly-once records live.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::key::{Key, Timestamp, Token};
use super::record::{ClaimOutcome, ClaimRequest, Record, Settle};

/// Durable (or in-memory) storage of exactly-once records.
///
/// **Every method is one atomic step on the backend** — a map operation under a lock, one
/// `BEGIN IMMEDIATE` transaction, one `INSERT … ON CONFLICT … RETURNING` statement, one Lua
/// script — never a read followed by a separate write. The rules each step applies are the
/// functions of [`transition`](super::transition); the `tollgate-testkit` conformance suite
/// checks a backend against them, including under 1,000 concurrent claims.
///
/// Times are passed in by the caller (the engine reads its [`Clock`](crate::clock::Clock)), so
/// a store never reads a clock itself and tests control expiry exactly.
pub trait Store: Send + Sync + 'static {
    /// Claims `req.key` (see [`transition::claim`](super::transition::claim)).
    fn claim(
        &self,
        req: ClaimRequest,
    ) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;

    /// Extends the holder's lease to `lease_until`.
    fn renew(
        &self,
        key: &Key,
        token: Token,
        lease_until: Timestamp,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Stores the holder's serialized result, kept until `expires_at`.
    fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Stores the holder's serialized failure, kept until `expires_at`; a retryable one frees
    /// the key for the next claim.
    fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// The key's record, if any.
    fn read(&self, key: &Key) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Removes every finished record whose retention ended at or before `now`; returns how
    /// many. Attempts in progress or of unknown outcome are never purged.
    fn purge(&self, now: Timestamp) -> impl Future<Output = Result<u64, StoreError>> + Send;
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
        lease_until: Timestamp,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).renew(key, token, lease_until)
    }

    fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).complete(key, token, result, expires_at)
    }

    fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).fail(key, token, error, retryable, expires_at)
    }

    fn read(&self, key: &Key) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send {
        (**self).read(key)
    }

    fn purge(&self, now: Timestamp) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).purge(now)
    }
}

/// A backend failed (I/O, a corrupt row, a closed connection). The operation may or may not
/// have taken effect when the failure came after the request was sent.
#[derive(Clone)]
pub struct StoreError(Arc<dyn StdError + Send + Sync>);

impl StoreError {
    /// Wraps a backend's error.
    pub fn new(error: impl StdError + Send + Sync + 'static) -> Self {
        StoreError(Arc::new(error))
    }

    /// A backend failure described by a message.
    pub fn msg(message: impl Into<String>) -> Self {
        StoreError(Arc::new(Message(message.into())))
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StoreError").field(&self.0).finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store failed: {}", self.0)
    }
}

/// Two store errors are equal when their messages are (errors carry no identity of their own).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StoreError {}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}
