//! Errors of the breaker.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::State;

/// The breaker did not permit the call.
///
/// This is a rejection by tollgate, not a failure of the dependency: it is never recorded as an
/// outcome. A web layer maps it to 503 with `Retry-After` taken from [`retry_after`](Self::retry_after).
///
/// One pointer wide (its details are boxed): a rejection is rare next to a permitted call,
/// and a `Result<T, CallError<E>>` that fits in two registers is returned without going through
/// memory on every permitted call.
#[derive(Clone, PartialEq, Eq)]
pub struct NotPermitted(Box<Rejection>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rejection {
    breaker: Arc<str>,
    state: State,
    retry_after: Option<Duration>,
}

impl NotPermitted {
    pub(crate) fn new(breaker: Arc<str>, state: State, retry_after: Option<Duration>) -> Self {
        NotPermitted(Box::new(Rejection {
            breaker,
            state,
            retry_after,
        }))
    }

    /// The name of the breaker that rejected the call.
    pub fn breaker(&self) -> &str {
        &self.0.breaker
    }

    /// The state the breaker was in.
    pub fn state(&self) -> State {
        self.0.state
    }

    /// When an open breaker will let trial calls through; `None` when unknown (forced open, or
    /// half-open with every trial slot taken).
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }
}

impl fmt::Debug for NotPermitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotPermitted")
            .field("breaker", &self.0.breaker)
            .field("state", &self.0.state)
            .field("retry_after", &self.0.retry_after)
            .finish()
    }
}

impl fmt::Display for NotPermitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker `{}` is {}",
            self.0.breaker, self.0.state
        )?;
        if let Some(after) = self.0.retry_after {
            write!(f, "; retry after {after:?}")?;
        }
        Ok(())
    }
}

impl Error for NotPermitted {}

/// The error of [`Breaker::call`](super::Breaker::call): rejected, or the call's own error.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The breaker did not let the call through; the call was not made.
    Rejected(NotPermitted),
    /// The call was made and returned this error.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(rejected) => rejected.fmt(f),
            CallError::Inner(inner) => inner.fmt(f),
        }
    }
}

impl<E: Error + 'static> Error for CallError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CallError::Rejected(rejected) => Some(rejected),
            CallError::Inner(inner) => Some(inner),
        }
    }
}

/// A setting of a [`BreakerConfig`](super::BreakerConfig) is out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    problem: &'static str,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, problem: &'static str) -> Self {
        ConfigError { field, problem }
    }

    /// The name of the offending setting.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid breaker setting `{}`: {}",
            self.field, self.problem
        )
    }
}

impl Error for ConfigError {}
