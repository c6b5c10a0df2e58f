//! Fail modes, and the resolution that says which path produced the result.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;

use super::error::PolicyError;

/// Which path produced a call's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The operation succeeded (possibly after retries).
    Success,
    /// The operation failed and the fallback produced the value.
    FallbackSuccess,
    /// The operation failed and the call site is fail-open: there is no value, and that is fine.
    Skipped,
    /// The operation failed (and so did the fallback, if there was one).
    Failed,
}

impl Status {
    /// `success`, `fallback_success`, `skipped` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::FallbackSuccess => "fallback_success",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of a call through a policy: the value or the errors, and which path it took.
/// `F` is the fallback's error type.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Resolution<T, E, F = Infallible> {
    /// The operation succeeded.
    Success(T),
    /// The operation failed with `error`; the fallback produced `value`.
    FallbackSuccess {
        /// The fallback's value.
        value: T,
        /// The operation's error, kept for logs.
        error: PolicyError<E>,
    },
    /// The operation failed with `error`; the call site skips it (fail-open).
    Skipped {
        /// The operation's error.
        error: PolicyError<E>,
    },
    /// The operation failed with `error`; `fallback_error` is the fallback's own error when a
    /// fallback ran and failed too.
    Failed {
        /// The operation's error.
        error: PolicyError<E>,
        /// The fallback's error, if a fallback ran.
        fallback_error: Option<F>,
    },
}

impl<T, E, F> Resolution<T, E, F> {
    /// Which path produced this result.
    pub fn status(&self) -> Status {
        match self {
            Resolution::Success(_) => Status::Success,
            Resolution::FallbackSuccess { .. } => Status::FallbackSuccess,
            Resolution::Skipped { .. } => Status::Skipped,
            Resolution::Failed { .. } => Status::Failed,
        }
    }

    /// The value, from the operation or the fallback.
    pub fn value(&self) -> Option<&T> {
        match self {
            Resolution::Success(value) | Resolution::FallbackSuccess { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The operation's error, if it failed.
    pub fn error(&self) -> Option<&PolicyError<E>> {
        match self {
            Resolution::Success(_) => None,
            Resolution::FallbackSuccess { error, .. }
            | Resolution::Skipped { error }
            | Resolution::Failed { error, .. } => Some(error),
        }
    }

    /// `Ok(Some(value))` on success or fallback success, `Ok(None)` when skipped, and the
    /// operation's error when failed.
    pub fn into_result(self) -> Result<Option<T>, PolicyError<E>> {
        match self {
            Resolution::Success(value) | Resolution::FallbackSuccess { value, .. } => {
                Ok(Some(value))
            }
            Resolution::Skipped { .. } => Ok(None),
            Resolution::Failed { error, .. } => Err(error),
        }
    }
}

/// What a call site does when the operation fails: [`Propagate`] (fail-closed, the default),
/// [`Skip`] (fail-open) or [`Fallback`].
pub trait FailMode<T, E> {
    /// The fallback's error type (`Infallible` when there is no fallback).
    type Error;

    /// Turns the operation's error into the call's resolution. A fallback is run and awaited
    /// here, to completion.
    fn resolve(self, error: PolicyError<E>) -> impl Future<Output = Resolution<T, E, Self::Error>>;
}

/// Fail-closed: the error is the result.
#[derive(Clone, Copy, Debug, Default)]
pub struct Propagate;

impl<T, E> FailMode<T, E> for Propagate {
    type Error = Infallible;

    async fn resolve(self, error: PolicyError<E>) -> Resolution<T, E, Infallible> {
        Resolution::Failed {
            error,
            fallback_error: None,
        }
    }
}

/// Fail-open: the call site goes on without a value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Skip;

impl<T, E> FailMode<T, E> for Skip {
    type Error = Infallible;

    async fn resolve(self, error: PolicyError<E>) -> Resolution<T, E, Infallible> {
        Resolution::Skipped { error }
    }
}

/// Runs the wrapped function when the operation fails, and awaits its future.
#[derive(Clone, Copy, Debug)]
pub struct Fallback<G>(pub G);

impl<T, E, G, Fut, FE> FailMode<T, E> for Fallback<G>
where
    G: FnOnce(&PolicyError<E>) -> Fut,
    Fut: Future<Output = Result<T, FE>>,
{
    type Error = FE;

    async fn resolve(self, error: PolicyError<E>) -> Resolution<T, E, FE> {
        match (self.0)(&error).await {
            Ok(value) => Resolution::FallbackSuccess { value, error },
            Err(fallback_error) => Resolution::Failed {
                error,
                fallback_error: Some(fallback_error),
            },
        }
    }
}
