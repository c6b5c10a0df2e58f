//! Optimistic concurrency: read a versioned value, compute the new one, write it only if the
//! version is unchanged, and retry from a fresh read when it changed (S2's vending machine).
//!
//! [`update_with_retry`] drives the loop over three functions you provide for your storage —
//! `read`, `compute` and `compare_and_set` — so it works the same on an in-memory
//! [`VersionedCell`] or on a database row (`UPDATE … SET balance = ?, version = version + 1
//! WHERE id = ? AND version = ?`).
//!
//! # Guarantees under concurrency
//! - **A write is applied only over the version it was computed from**: `compute` always sees
//!   the state its result replaces, so two purchases can never both spend the same balance,
//!   and an older update arriving after a newer one is rejected (its version is stale).
//! - `compute` may refuse (insufficient funds): that answer is final, not retried.
//! - A write that lost the race is retried from a fresh read, at most `max_attempts` times in
//!   all, yielding to the scheduler between attempts; then [`Error::Contended`].
//!
//! Cancellation: dropping the future between attempts leaves the storage untouched or with one
//! complete write; no partial update is possible since each write is one compare-and-set.
//!
//! # Example
//! ```
//! use tollgate::versioned::{VersionedCell, update_with_retry};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let wallet = &VersionedCell::new(1_000_u64);
//! let buy = |price: u64| {
//!     update_with_retry(
//!         5,
//!         move || async move { Ok(wallet.get()) },
//!         move |balance: &u64| balance.checked_sub(price).ok_or("insufficient funds"),
//!         move |version, balance| async move { Ok(wallet.compare_and_set(version, balance)) },
//!     )
//! };
//! assert_eq!(buy(1_000).await.unwrap().value, 0);
//! assert!(buy(1_000).await.is_err()); // the balance is spent
//! assert_eq!(wallet.get().version, 1);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

/// A value and the version it was read at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version: every applied write increments it.
    pub version: u64,
}

/// Why [`update_with_retry`] did not apply a write.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// `read`, `compute` or `compare_and_set` returned this error (e.g. insufficient funds).
    Failed(E),
    /// Every attempt lost its compare-and-set to a concurrent writer.
    Contended {
        /// Attempts made.
        attempts: u32,
    },
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Failed(e) => write!(f, "update failed: {e}"),
            Error::Contended { attempts } => {
                write!(f, "update lost to concurrent writers {attempts} times")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Error<E> {}

/// Reads, computes and compare-and-sets until a write applies, `compute` refuses, or
/// `max_attempts` writes have lost the race. Returns the value written and its new version.
///
/// `compare_and_set(expected_version, new_value)` must write atomically only if the stored
/// version is still `expected_version` (incrementing it) and return whether it wrote.
pub async fn update_with_retry<T, E, R, RF, C, W, WF>(
    max_attempts: u32,
    mut read: R,
    mut compute: C,
    mut compare_and_set: W,
) -> Result<Versioned<T>, Error<E>>
where
    T: Clone,
    R: FnMut() -> RF,
    RF: Future<Output = Result<Versioned<T>, E>>,
    C: FnMut(&T) -> Result<T, E>,
    W: FnMut(u64, T) -> WF,
    WF: Future<Output = Result<bool, E>>,
{
    for attempt in 1..=max_attempts {
        let current = read().await.map_err(Error::Failed)?;
        let next = compute(&current.value).map_err(Error::Failed)?;
        let written = compare_and_set(current.version, next.clone());
        if written.await.map_err(Error::Failed)? {
            return Ok(Versioned {
                value: next,
                version: current.version + 1,
            });
        }
        tracing::trace!(attempt, "versioned: lost a compare-and-set, retrying");
        tokio::task::yield_now().await;
    }
    Err(Error::Contended {
        attempts: max_attempts,
    })
}

/// An in-memory versioned value with an atomic compare-and-set.
#[derive(Debug)]
pub struct VersionedCell<T> {
    inner: Mutex<Versioned<T>>,
}

impl<T: Clone> VersionedCell<T> {
    /// A cell holding `value` at version 0.
    pub fn new(value: T) -> Self {
        VersionedCell {
            inner: Mutex::new(Versioned { value, version: 0 }),
        }
    }

    /// The current value and version.
    pub fn get(&self) -> Versioned<T> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes `value` if the version is still `expected` (then increments it); returns whether
    /// it wrote.
    pub fn compare_and_set(&self, expected: u64, value: T) -> bool {
        let mut current = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if current.version != expected {
            return false;
        }
        *current = Versioned {
            value,
            version: expected + 1,
        };
        true
    }
}
