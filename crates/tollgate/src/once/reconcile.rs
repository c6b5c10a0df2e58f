//! Settling attempts of unknown outcome: a reconcile hook per call, and by hand.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use super::error::{CodecError, Failure, encode};
use super::record::Resolution;
use crate::store::Key;

/// A reconcile hook's answer about an attempt of unknown outcome (its holder vanished after
/// it may have had its effect: a paid call may have been made).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reconciled<T> {
    /// The attempt had its effect; this is its result (read back from where the work wrote
    /// it). The key is settled as completed and the call returns it (`replayed: true`).
    Done(T),
    /// The attempt did not have its effect (or paying again is acceptable): take the key over
    /// with a higher fence and run the work again.
    RunAgain,
    /// Nobody can tell: the call returns [`Error::OutcomeUnknown`](super::Error::OutcomeUnknown)
    /// and the key stays unknown until it is settled.
    LeaveUnknown,
}

/// How an operator settles a key of unknown outcome with [`Once::settle`](super::Once::settle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement<T, E> {
    /// The attempt had its effect, with this result: later calls replay it.
    Completed(T),
    /// The attempt failed: a permanent failure is replayed to later calls, a retryable one
    /// frees the key so the next call runs the work again.
    Failed(Failure<E>),
}

impl<T: Serialize, E: Serialize> Settlement<T, E> {
    pub(crate) fn encode(&self) -> Result<Resolution, CodecError> {
        Ok(match self {
            Settlement::Completed(value) => Resolution::Completed {
                result: encode(value)?,
            },
            Settlement::Failed(failure) => Resolution::Failed {
                error: encode(&failure.error)?,
                retryable: failure.retryable,
            },
        })
    }
}

type Answer = Result<Reconciled<Vec<u8>>, CodecError>;

/// A call's hook with its value serialized, so one engine serves every value type.
pub(crate) type Hook = Box<dyn FnOnce(Key) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send>;

/// Wraps a typed hook as a [`Hook`].
pub(crate) fn hook<T, F, Fut>(f: F) -> Hook
where
    T: Serialize,
    F: FnOnce(Key) -> Fut + Send + 'static,
    Fut: Future<Output = Reconciled<T>> + Send + 'static,
{
    Box::new(move |key| {
        Box::pin(async move {
            Ok(match f(key).await {
                Reconciled::Done(value) => Reconciled::Done(encode(&value)?),
                Reconciled::RunAgain => Reconciled::RunAgain,
                Reconciled::LeaveUnknown => Reconciled::LeaveUnknown,
            })
        })
    })
}
