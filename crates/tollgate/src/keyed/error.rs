//! Why [`Resources::get`](super::Resources::get) produced no resource.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::flight;

/// Why no resource was handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The factory failed; every caller that waited for this creation gets the same error, and
    /// nothing is cached, so the next call tries again.
    Create(E),
    /// The live-resource limit is reached and the manager is configured to fail at once.
    LimitReached {
        /// The configured limit.
        limit: usize,
    },
    /// The live-resource limit stayed reached for the whole configured wait.
    Timeout {
        /// The configured limit.
        limit: usize,
        /// How long the creation waited for a free slot.
        waited: Duration,
    },
    /// The factory panicked.
    Panicked(String),
    /// The creation was stopped before it finished (the runtime shut down).
    Aborted,
}

impl<E> From<flight::Error<Error<E>>> for Error<E> {
    fn from(error: flight::Error<Error<E>>) -> Self {
        match error {
            flight::Error::Failed(inner) => inner,
            flight::Error::Panicked(message) => Error::Panicked(message),
            flight::Error::Aborted => Error::Aborted,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Create(e) => write!(f, "resource creation failed: {e}"),
            Error::LimitReached { limit } => {
                write!(f, "live resource limit of {limit} reached")
            }
            Error::Timeout { limit, waited } => {
                write!(
                    f,
                    "live resource limit of {limit} still reached after {waited:?}"
                )
            }
            Error::Panicked(message) => write!(f, "resource creation panicked: {message}"),
            Error::Aborted => f.write_str("resource creation was aborted"),
        }
    }
}

impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Create(e) => Some(e),
            _ => None,
        }
    }
}
