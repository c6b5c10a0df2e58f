//! One execution of a key against the store: claim, run under a renewed lease, settle.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::config::{OnCompleted, OnInProgress, OnUnknown, Options};
use super::error::{Error, Failure};
use super::key::{Fingerprint, Key, Owner, Timestamp, Token};
use super::record::{ClaimOutcome, ClaimRequest, OnExpired, Settle};
use super::store::Store;
use crate::clock::Clock;

const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(500);

/// Maps the engine's [`Clock`] onto wall-clock [`Timestamp`]s, so paused or manual time moves
/// leases and retention while stores still compare times across processes.
#[derive(Clone, Debug)]
pub(crate) struct Timeline {
    pub(crate) clock: Clock,
    origin: Instant,
    wall_origin: Timestamp,
}

impl Timeline {
    pub(crate) fn new(clock: Clock) -> Self {
        Timeline {
            origin: clock.now(),
            wall_origin: Timestamp::system_now(),
            clock,
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        let elapsed = self.clock.now().saturating_duration_since(self.origin);
        self.wall_origin.plus(elapsed)
    }
}

/// A finished execution's value, serialized: shared by every caller of one flight.
#[derive(Clone, Debug)]
pub(crate) enum Done {
    Fresh(Arc<[u8]>),
    Replayed(Arc<[u8]>),
}

/// Why an execution produced no value, with the work's error still serialized; cloned to
/// every caller of one flight, each of which decodes it.
pub(crate) type Stop = Error<Arc<[u8]>>;

/// The state shared by every clone of a `Once`.
#[derive(Debug)]
pub(crate) struct Engine<S> {
    pub(crate) store: S,
    pub(crate) options: Options,
    pub(crate) timeline: Timeline,
}

impl<S: Store> Engine<S> {
    /// Claims `key` until this call holds it, gets an answer, or gives up waiting.
    pub(crate) async fn execute<T, E, F, Fut>(
        &self,
        key: Key,
        fingerprint: Fingerprint,
        work: F,
    ) -> Result<Done, Stop>
    where
        T: Serialize,
        E: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure<E>>>,
    {
        let started = self.timeline.clock.now();
        let mut pause = POLL_FIRST;
        loop {
            let now = self.timeline.now();
            let req = ClaimRequest {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                owner: Owner::random(),
                lease_until: now.plus(self.options.lease),
                now,
                on_expired: match self.options.on_unknown {
                    OnUnknown::Rerun => OnExpired::TakeOver,
                    OnUnknown::Surface => OnExpired::MarkUnknown,
                },
            };
            match self.store.claim(req).await? {
                ClaimOutcome::Acquired { token, took_over } => {
                    if let Some(previous) = took_over {
                        tracing::warn!(%key, fence = previous.fence.0, "once: took over");
                        metrics::counter!("tollgate_once_takeovers_total",
                            "namespace" => key.namespace().to_owned())
                        .increment(1);
                    }
                    tracing::debug!(%key, fence = token.fence.0, "once: claimed");
                    return self.lead(&key, token, work).await;
                }
                ClaimOutcome::InProgress { .. } => {
                    let OnInProgress::Wait { deadline } = self.options.on_in_progress else {
                        tracing::debug!(%key, "once: conflict");
                        return Err(Error::Conflict);
                    };
                    let waited = self.timeline.clock.now().saturating_duration_since(started);
                    if waited >= deadline {
                        return Err(Error::WaitTimedOut);
                    }
                    tokio::time::sleep(pause.min(deadline - waited)).await;
                    pause = (pause * 2).min(POLL_MAX);
                }
                ClaimOutcome::Completed { result } => {
                    return match self.options.on_completed {
                        OnCompleted::Replay => Ok(Done::Replayed(result.into())),
                        OnCompleted::Reject => Err(Error::AlreadyDone),
                    };
                }
                ClaimOutcome::Failed { error } => {
                    return Err(Error::Failed(Failure::permanent(error.into())));
                }
                ClaimOutcome::Mismatch => return Err(Error::Mismatch),
                ClaimOutcome::Unknown { .. } => return Err(Error::OutcomeUnknown),
            }
        }
    }

    /// Runs the work while renewing the lease, then stores its outcome.
    async fn lead<T, E, F, Fut>(&self, key: &Key, token: Token, work: F) -> Result<Done, Stop>
    where
        T: Serialize,
        E: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Failure<E>>>,
    {
        let outcome = tokio::select! {
            biased;
            outcome = work() => outcome,
            () = self.renew_until_lost(key, token) => return Err(Error::Fenced),
        };
        let now = self.timeline.now();
        let kept_until = now.plus(self.options.retention);
        match outcome {
            Ok(value) => {
                let result = self.encoded(key, token, serde_json::to_vec(&value)).await?;
                let shared: Arc<[u8]> = result.as_slice().into();
                match self.store.complete(key, token, result, kept_until).await? {
                    Settle::Done => Ok(Done::Fresh(shared)),
                    Settle::Fenced => Err(fenced(key, token)),
                }
            }
            Err(Failure { error, retryable }) => {
                let bytes = self.encoded(key, token, serde_json::to_vec(&error)).await?;
                let error: Arc<[u8]> = bytes.as_slice().into();
                let until = if retryable { now } else { kept_until };
                match self.store.fail(key, token, bytes, retryable, until).await? {
                    Settle::Done => Err(Error::Failed(Failure { error, retryable })),
                    Settle::Fenced => Err(fenced(key, token)),
                }
            }
        }
    }

    /// A value serialized for the store; when it could not be, frees the key (nothing storable was
    /// produced, so the next call may run again) and reports the codec error.
    async fn encoded(
        &self,
        key: &Key,
        token: Token,
        encoded: serde_json::Result<Vec<u8>>,
    ) -> Result<Vec<u8>, Stop> {
        match encoded {
            Ok(bytes) => Ok(bytes),
            Err(e) => {
                let now = self.timeline.now();
                let _ = self.store.fail(key, token, Vec::new(), true, now).await;
                Err(Error::Codec(e.to_string()))
            }
        }
    }

    /// Renews the lease every `renew_every`; returns only when the store says the lease is
    /// lost (a store error is retried at the next tick: the lease may still be ours).
    async fn renew_until_lost(&self, key: &Key, token: Token) {
        loop {
            tokio::time::sleep(self.options.renew_every).await;
            let lease_until = self.timeline.now().plus(self.options.lease);
            match self.store.renew(key, token, lease_until).await {
                Ok(Settle::Done) => {}
                Ok(Settle::Fenced) => {
                    tracing::warn!(%key, fence = token.fence.0, "once: lease lost");
                    return;
                }
                Err(e) => tracing::warn!(%key, error = %e, "once: lease renewal failed"),
            }
        }
    }
}

fn fenced(key: &Key, token: Token) -> Stop {
    tracing::warn!(%key, fence = token.fence.0, "once: fenced");
    Error::Fenced
}
