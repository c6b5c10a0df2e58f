//! Typed classification of call results: success, failure or ignored.
//!
//! A classifier looks at the call's `Result` — its variants, types and codes — and never at
//! message text: two errors with the same message may deserve different outcomes (S1).

/// What a finished call means for the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The dependency worked.
    Success,
    /// The dependency failed; counts towards the failure rate.
    Failure,
    /// Not the dependency's fault (a validation error, a 404 the caller expected): the call is
    /// not counted at all, and a half-open trial slot it held is given back.
    Ignored,
}

impl Outcome {
    /// A stable lower-case name, used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Ignored => "ignored",
        }
    }
}

/// Decides the [`Outcome`] of a call from its result.
///
/// Implemented by every `Fn(&Result<T, E>) -> Outcome`, by [`ErrIsFailure`] (the default) and by
/// [`ByErrorKind`] for error types that classify themselves.
pub trait Classifier<T, E> {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

impl<T, E, F> Classifier<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default classifier: `Ok` is a success, every `Err` a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrIsFailure;

impl<T, E> Classifier<T, E> for ErrIsFailure {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// An error type that knows what it means for a breaker, from its own variants or codes.
///
/// ```
/// use tollgate::breaker::{BreakerOutcome, Outcome};
///
/// enum DbError { Forbidden, Unavailable }
///
/// impl BreakerOutcome for DbError {
///     fn breaker_outcome(&self) -> Outcome {
///         match self {
///             DbError::Forbidden => Outcome::Ignored,     // our fault, not the database's
///             DbError::Unavailable => Outcome::Failure,
///         }
///     }
/// }
/// ```
pub trait BreakerOutcome {
    /// The outcome of a call that returned this error.
    fn breaker_outcome(&self) -> Outcome;
}

/// Classifies `Ok` as a success and `Err(e)` by `e.breaker_outcome()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByErrorKind;

impl<T, E: BreakerOutcome> Classifier<T, E> for ByErrorKind {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => e.breaker_outcome(),
        }
    }
}
