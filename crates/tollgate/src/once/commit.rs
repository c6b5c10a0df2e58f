//! Transactional completion: the work's own writes and the completion commit together.
//!
//! With [`Call::run_committed`](super::Call::run_committed) the work makes its paid call
//! outside any transaction and returns a [`Commit`]: the database writes it wants to make.
//! The engine hands that to the store, which — in **one** transaction of the backend — checks
//! that the call still holds the key (fenced by its token), runs the writes, and stores the
//! completion. Either both commit or neither does: there is no state in which the work's rows
//! are written but its claim unfinished, and a holder that lost its lease writes nothing.
//!
//! Each backend with transactions provides the [`Commit`] implementation that fits its driver
//! (`tollgate_sqlite::InTransaction` over a `rusqlite::Transaction`); the trait only fixes what
//! the engine needs back.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::store::Store;
use crate::store::{Key, StoreError, Token};

/// Whose completion a commit writes, and how long the result is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The key held.
    pub key: Key,
    /// The holder's token: the completion is fenced by it.
    pub token: Token,
    /// How long a stored result (or permanent failure) is kept.
    pub retention: Duration,
}

/// What a transactional commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Committed {
    /// The work's writes and the completed record (this serialized result) committed in one
    /// transaction.
    Completed {
        /// The serialized result stored with the completion.
        result: Vec<u8>,
    },
    /// The work's writes reported a failure: they were rolled back and the failure (this
    /// serialized error) recorded in the same transaction; a retryable one freed the key.
    Failed {
        /// The serialized error.
        error: Vec<u8>,
        /// Whether the failure freed the key.
        retryable: bool,
    },
    /// The call no longer holds the key: nothing was written.
    Fenced,
    /// The writes produced a value that could not be serialized: everything was rolled back.
    Unencodable(String),
}

/// The work's own writes, committed by a store together with the completion.
///
/// `Value` is what the call returns (and what later calls replay), `Error` the work's failure.
/// An implementation must, in one transaction of `store`'s backend: read the record of
/// `completion.key` and stop with [`Committed::Fenced`] unless `completion.token` holds it
/// (the rule of [`transition::complete`](super::transition::complete)); run the writes; then
/// write the completed record — or roll the writes back and write the failed record — and
/// commit. A backend error before the commit leaves nothing written.
pub trait Commit<S: Store>: Send + 'static {
    /// The call's value.
    type Value: Serialize + DeserializeOwned + Send + 'static;
    /// The work's error.
    type Error: Serialize + DeserializeOwned + Send + 'static;

    /// Runs the writes and the completion in one transaction.
    fn commit(
        self,
        store: &S,
        completion: Completion,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;
}
