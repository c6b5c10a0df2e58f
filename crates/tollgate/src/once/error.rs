//! What [`Once::run`](super::Once::run) returns: the work's value, or why there is none.

use std::error::Error as StdError;
use std::fmt;

use crate::store::StoreError;

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
    /// This call's attempt lost its lease — it was taken over after the lease ran out, or the
    /// lease could not be renewed in time — so its result was not stored.
    Fenced,
    /// An earlier attempt vanished after it may have had its effect, and neither the call's
    /// reconcile hook nor the engine's [`OnUnknown`](super::OnUnknown) policy decided to run
    /// it again; an operator can settle the key with [`Once::settle`](super::Once::settle).
    OutcomeUnknown,
    /// The key stayed in progress past the wait deadline.
    WaitTimedOut,
    /// The work failed: now, permanently before (the stored failure), or — for a waiter in
    /// [`OnInProgress::Wait`](super::OnInProgress::Wait) — in the attempt it waited for.
    Failed(Failure<E>),
    /// The store failed.
    Store(StoreError),
    /// A value could not be serialized or a stored one deserialized.
    Codec(String),
    /// The work panicked; its record is left to lease expiry (outcome unknown).
    Panicked(String),
}

/// Which variant an [`Error`] is, without its payload: for metrics labels, logs and matching
/// across error types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Conflict`].
    Conflict,
    /// [`Error::Mismatch`].
    Mismatch,
    /// [`Error::AlreadyDone`].
    AlreadyDone,
    /// [`Error::Fenced`].
    Fenced,
    /// [`Error::OutcomeUnknown`].
    OutcomeUnknown,
    /// [`Error::WaitTimedOut`].
    WaitTimedOut,
    /// [`Error::Failed`].
    Failed,
    /// [`Error::Store`].
    Store,
    /// [`Error::Codec`].
    Codec,
    /// [`Error::Panicked`].
    Panicked,
}

impl ErrorKind {
    /// A stable lowercase name (`conflict`, `outcome_unknown`, …), the `outcome` label of
    /// `tollgate_once_calls_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::Mismatch => "mismatch",
            ErrorKind::AlreadyDone => "already_done",
            ErrorKind::Fenced => "fenced",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
            ErrorKind::WaitTimedOut => "wait_timed_out",
            ErrorKind::Failed => "failed",
            ErrorKind::Store => "store",
            ErrorKind::Codec => "codec",
            ErrorKind::Panicked => "panicked",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<E> Error<E> {
    /// Which variant this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Conflict => ErrorKind::Conflict,
            Error::Mismatch => ErrorKind::Mismatch,
            Error::AlreadyDone => ErrorKind::AlreadyDone,
            Error::Fenced => ErrorKind::Fenced,
            Error::OutcomeUnknown => ErrorKind::OutcomeUnknown,
            Error::WaitTimedOut => ErrorKind::WaitTimedOut,
            Error::Failed(_) => ErrorKind::Failed,
            Error::Store(_) => ErrorKind::Store,
            Error::Codec(_) => ErrorKind::Codec,
            Error::Panicked(_) => ErrorKind::Panicked,
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

/// A value could not be serialized for the store, or a stored one deserialized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode or decode a stored value: {}", self.0)
    }
}

impl StdError for CodecError {}

impl<E> From<CodecError> for Error<E> {
    fn from(e: CodecError) -> Self {
        Error::Codec(e.0)
    }
}

/// Serializes a value the way the engine stores it (JSON): for backends whose transactional
/// commit ([`Commit`](super::Commit)) writes the completion themselves.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    serde_json::to_vec(value).map_err(|e| CodecError(e.to_string()))
}

/// Deserializes a stored value.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError(e.to_string()))
}

/// Why [`Once::settle`](super::Once::settle) did not settle a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettleError {
    /// The key has no record.
    NotFound,
    /// The key's record is not of unknown outcome (it is in progress under a live lease, or
    /// finished): there is nothing to settle.
    NotUnknown,
    /// The record changed hands while it was being settled (its late holder reported, or
    /// another call took it over or settled it); read it again.
    Changed,
    /// The store failed.
    Store(StoreError),
    /// The settlement could not be serialized.
    Codec(String),
}

impl fmt::Display for SettleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettleError::NotFound => f.write_str("the key has no record"),
            SettleError::NotUnknown => f.write_str("the key's outcome is not unknown"),
            SettleError::Changed => f.write_str("the record changed while it was being settled"),
            SettleError::Store(e) => e.fmt(f),
            SettleError::Codec(msg) => write!(f, "cannot encode the settlement: {msg}"),
        }
    }
}

impl StdError for SettleError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            SettleError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for SettleError {
    fn from(e: StoreError) -> Self {
        SettleError::Store(e)
    }
}
