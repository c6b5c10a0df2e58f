//! What a caller of [`Flight::run`](super::Flight::run) gets back.

use std::error::Error as StdError;
use std::fmt;

/// Why a shared execution produced no value.
///
/// Every caller of one execution receives a clone of the same error: the work is never re-run
/// on a waiter's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The work returned this error.
    Failed(E),
    /// The work panicked; the payload's message, when it was a string.
    Panicked(String),
    /// The work was stopped before it finished: every caller had gone and the flight aborts
    /// unused work, or the runtime shut down.
    Aborted,
}

impl<E> Error<E> {
    /// The work's own error, if it returned one.
    pub fn failed(&self) -> Option<&E> {
        match self {
            Error::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the work's own error, keeping the other variants.
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Failed(e) => Error::Failed(f(e)),
            Error::Panicked(msg) => Error::Panicked(msg),
            Error::Aborted => Error::Aborted,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Failed(e) => write!(f, "shared execution failed: {e}"),
            Error::Panicked(msg) => write!(f, "shared execution panicked: {msg}"),
            Error::Aborted => f.write_str("shared execution was aborted before it finished"),
        }
    }
}

impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// How a caller took part in an execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// This caller started the execution.
    Leader,
    /// This caller joined an execution another caller had started.
    Joiner,
    /// No execution: the result came from the flight's short-lived result cache.
    Cached,
}

impl Role {
    /// A stable lower-case name, used in metrics labels: `leader`, `joiner`, `cached`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Joiner => "joiner",
            Role::Cached => "cached",
        }
    }
}

/// The shared result of one execution, and how this caller took part in it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the outcome carries the shared result"]
pub struct Outcome<T, E> {
    /// The execution's result, shared by every caller.
    pub result: Result<T, Error<E>>,
    /// Whether this caller led, joined or was served from the cache.
    pub role: Role,
}

impl<T, E> Outcome<T, E> {
    /// `true` when this caller started the execution.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The result, dropping the role.
    pub fn into_result(self) -> Result<T, Error<E>> {
        self.result
    }
}

/// Turns a panic payload into a message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    struct Boom;
    impl fmt::Display for Boom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("boom")
        }
    }
    impl StdError for Boom {}

    #[test]
    fn display_is_lowercase_and_source_is_kept() {
        let e = Error::Failed(Boom);
        assert_eq!(e.to_string(), "shared execution failed: boom");
        assert!(e.source().is_some());
        assert!(Error::<Boom>::Aborted.source().is_none());
        assert_eq!(
            Error::<Boom>::Panicked("x".into()).to_string(),
            "shared execution panicked: x"
        );
        assert!(matches!(e.map(|_| 1), Error::Failed(1)));
    }
}
