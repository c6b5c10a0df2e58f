//! Why a call through a policy did not produce a value.

use std::error::Error;
use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::breaker::NotPermitted;

/// An attempt ran longer than the policy's timeout and was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    pub(crate) after: Duration,
}

impl Elapsed {
    /// The timeout that elapsed.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call timed out after {:?}", self.after)
    }
}

impl Error for Elapsed {}

/// The bulkhead was full and no slot freed up within its maximum wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkheadFull {
    /// Never zero, so an `Option<BulkheadFull>` is one word.
    pub(crate) max_concurrent: NonZeroUsize,
}

impl BulkheadFull {
    /// The bulkhead's limit on concurrent calls.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent.get()
    }
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bulkhead full ({} concurrent calls)",
            self.max_concurrent
        )
    }
}

impl Error for BulkheadFull {}

/// The error of a call through a [`Policy`](super::Policy): the last attempt's error.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError<E> {
    /// The operation ran and failed.
    Inner(E),
    /// The attempt timed out.
    Timeout(Elapsed),
    /// The circuit breaker rejected the attempt; the operation was not run.
    Rejected(NotPermitted),
    /// The bulkhead rejected the attempt; the operation was not run.
    BulkheadFull(BulkheadFull),
}

impl<E> PolicyError<E> {
    /// The operation's own error, if that is what this is.
    pub fn inner(&self) -> Option<&E> {
        match self {
            PolicyError::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// A stable lower-case name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyError::Inner(_) => "inner",
            PolicyError::Timeout(_) => "timeout",
            PolicyError::Rejected(_) => "rejected",
            PolicyError::BulkheadFull(_) => "bulkhead_full",
        }
    }
}

impl<E: fmt::Display> fmt::Display for PolicyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Inner(e) => e.fmt(f),
            PolicyError::Timeout(e) => e.fmt(f),
            PolicyError::Rejected(e) => e.fmt(f),
            PolicyError::BulkheadFull(e) => e.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for PolicyError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PolicyError::Inner(e) => Some(e),
            PolicyError::Timeout(e) => Some(e),
            PolicyError::Rejected(e) => Some(e),
            PolicyError::BulkheadFull(e) => Some(e),
        }
    }
}
