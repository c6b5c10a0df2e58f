//! [`LockError`]: why a lock could not be acquired or released.

use std::error::Error as StdError;
use std::fmt;

use crate::store::{Key, StoreError, Timestamp, Token};

/// Why a lock operation failed. Match on [`LockError::kind`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockError {
    /// Another owner holds the key (with [`Wait::Fail`](super::Wait::Fail)).
    Held {
        /// The key.
        key: Key,
        /// The holder, if the store named one (`None`: held by a task of this process).
        holder: Option<Token>,
        /// When the holder's lease ends unless renewed, on the store's clock, if known.
        lease_until: Option<Timestamp>,
    },
    /// The deadline of [`Wait::Until`](super::Wait::Until) passed before the key was free.
    TimedOut {
        /// The key.
        key: Key,
    },
    /// A release by a token that does not hold the key: its lease was lost and the key taken
    /// over, or it was already released. Nothing changed.
    NotHolder {
        /// The key.
        key: Key,
        /// The token that tried to release it.
        token: Token,
    },
    /// The store failed.
    Store(StoreError),
}

/// What kind of [`LockError`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockErrorKind {
    /// [`LockError::Held`].
    Held,
    /// [`LockError::TimedOut`].
    TimedOut,
    /// [`LockError::NotHolder`].
    NotHolder,
    /// [`LockError::Store`].
    Store,
}

impl LockError {
    /// What kind of failure this is.
    pub fn kind(&self) -> LockErrorKind {
        match self {
            LockError::Held { .. } => LockErrorKind::Held,
            LockError::TimedOut { .. } => LockErrorKind::TimedOut,
            LockError::NotHolder { .. } => LockErrorKind::NotHolder,
            LockError::Store(_) => LockErrorKind::Store,
        }
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { key, .. } => write!(f, "lock {key} is held by another owner"),
            LockError::TimedOut { key } => {
                write!(f, "lock {key} was not free before the deadline")
            }
            LockError::NotHolder { key, token } => write!(
                f,
                "lock {key} is not held by this owner (fence {})",
                token.fence.0
            ),
            LockError::Store(e) => write!(f, "lock store failed: {e}"),
        }
    }
}

impl StdError for LockError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            LockError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for LockError {
    fn from(e: StoreError) -> Self {
        LockError::Store(e)
    }
}
