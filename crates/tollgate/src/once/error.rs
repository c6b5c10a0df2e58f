//! What [`Once::run`](super::Once::run) returns: the work's value, or why there is none.

use std::error::Error as StdError;
use std::fmt;

use super::store::StoreError;

/// The work's own failure, and whether running it again may succeed.
///
/// A retryable failure frees the key (the next call runs the work again); a permanent one is
/// stored and replayed to every later call of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure<E> {
    /// The work's error.
    pub error: E,
    /// Whether the next call may run the work again.
    pub retryable: bool,
}

impl<E> Failure<E> {
    /// A failure worth retrying (a timeout, a 503): the key is freed.
    pub fn retryable(error: E) -> Self {
        Failure {
            error,
            retryable: true,
        }
    }

    /// A failure that running again will not fix (a 400): stored and replayed.
    pub fn permanent(error: E) -> Self {
        Failure {
            error,
            retryable: false,
        }
    }
}

/// The value of a successful call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the output carries the work's value"]
pub struct Output<T> {
    /// The work's value (deserialized from the store when replayed).
    pub value: T,
    /// `true` when the work did not run for this call: the value is the stored one.
    pub replayed: bool,
}

/// Why a call of [`Once::run`](super::Once::run) has no value. A web layer maps each variant to
/// a status (see the variant docs); the core does not know HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// Another call holds the key and the engine does not wait (HTTP 409).
    Conflict,
    /// The key holds the record of a different request (HTTP 422).
    Mismatch,
    /// The key was completed and the engine rejects repeats (HTTP 409 or 200 by policy).
    AlreadyDone,
    /// This call's attempt was taken over after its lease ran out; its result was not stored.
    Fenced,
    /// An earlier attempt vanished after it may have had its effect; the engine was told not
    /// to run the work again on its own.
    OutcomeUnknown,
    /// The key stayed in progress past the wait deadline.
    WaitTimedOut,
    /// The work failed (now, or permanently before and the failure was stored).
    Failed(Failure<E>),
    /// The store failed.
    Store(StoreError),
    /// A value could not be serialized or a stored one deserialized.
    Codec(String),
    /// The work panicked; its record is left to lease expiry (outcome unknown).
    Panicked(String),
}

impl<E> Error<E> {
    /// A stable lowercase name of the variant, for metrics labels.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Error::Conflict => "conflict",
            Error::Mismatch => "mismatch",
            Error::AlreadyDone => "already_done",
            Error::Fenced => "fenced",
            Error::OutcomeUnknown => "outcome_unknown",
            Error::WaitTimedOut => "wait_timed_out",
            Error::Failed(_) => "failed",
            Error::Store(_) => "store",
            Error::Codec(_) => "codec",
            Error::Panicked(_) => "panicked",
        }
    }

    /// Converts the work's error with `decode`, keeping the other variants; a failed
    /// conversion becomes [`Error::Codec`].
    pub(crate) fn decode_failure<F>(self, decode: impl FnOnce(E) -> Result<F, String>) -> Error<F> {
        match self {
            Error::Failed(Failure { error, retryable }) => match decode(error) {
                Ok(error) => Error::Failed(Failure { error, retryable }),
                Err(msg) => Error::Codec(msg),
            },
            Error::Conflict => Error::Conflict,
            Error::Mismatch => Error::Mismatch,
            Error::AlreadyDone => Error::AlreadyDone,
            Error::Fenced => Error::Fenced,
            Error::OutcomeUnknown => Error::OutcomeUnknown,
            Error::WaitTimedOut => Error::WaitTimedOut,
            Error::Store(e) => Error::Store(e),
            Error::Codec(msg) => Error::Codec(msg),
            Error::Panicked(msg) => Error::Panicked(msg),
        }
    }
}

impl<E> From<StoreError> for Error<E> {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Conflict => f.write_str("the key is being processed by another call"),
            Error::Mismatch => f.write_str("the key was used for a different request"),
            Error::AlreadyDone => f.write_str("the key was already processed"),
            Error::Fenced => f.write_str("the attempt lost its lease and was fenced"),
            Error::OutcomeUnknown => f.write_str("an earlier attempt's outcome is unknown"),
            Error::WaitTimedOut => f.write_str("timed out waiting for the key to be processed"),
            Error::Failed(failure) if failure.retryable => {
                write!(f, "the work failed (retryable): {}", failure.error)
            }
            Error::Failed(failure) => write!(f, "the work failed: {}", failure.error),
            Error::Store(e) => e.fmt(f),
            Error::Codec(msg) => write!(f, "cannot encode or decode a stored value: {msg}"),
            Error::Panicked(msg) => write!(f, "the work panicked: {msg}"),
        }
    }
}

/// Any displayable work error will do (stored errors are often plain strings), so the work's
/// error is part of the message rather than the `source`; a store failure is the source.
impl<E: fmt::Debug + fmt::Display> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}
