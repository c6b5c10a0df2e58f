//! [`Handler`]: what applies an effect of one kind, and how it fails.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::effect::Effect;

/// Why an attempt to apply an effect failed, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerError {
    /// What went wrong (stored as the effect's last error).
    pub message: String,
    /// Retry no sooner than this (a `Retry-After` from the service the handler called).
    pub retry_after: Option<Duration>,
    /// Retrying will not help: dead-letter it at once.
    pub permanent: bool,
}

impl HandlerError {
    /// A failure worth retrying with the worker's backoff.
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retry_after: None,
            permanent: false,
        }
    }

    /// A failure retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError {
            permanent: true,
            ..Self::retryable(message)
        }
    }

    /// Retry no sooner than `after`.
    #[must_use]
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HandlerError {}

/// The future a [`Handler`] returns: the receipt to store, or the failure.
pub type Applied = Pin<Box<dyn Future<Output = Result<Vec<u8>, HandlerError>> + Send>>;

/// Applies effects of one kind. It may run more than once for one effect (a retry, or a
/// takeover after a worker stalled past its lease), so it should apply the effect
/// idempotently by the effect's key — with [`crate::once`] or a unique constraint.
pub trait Handler: Send + Sync + 'static {
    /// Applies `effect`; `attempt` counts from 1.
    fn apply(&self, effect: Effect, attempt: u32) -> Applied;
}

impl<F, Fut> Handler for F
where
    F: Fn(Effect, u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<u8>, HandlerError>> + Send + 'static,
{
    fn apply(&self, effect: Effect, attempt: u32) -> Applied {
        Box::pin(self(effect, attempt))
    }
}
