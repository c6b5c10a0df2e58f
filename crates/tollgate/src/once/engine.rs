//! One execution of a key against the store: claim, run under a kept lease, settle.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::commit::{Commit, Committed, Completion};
use super::config::{OnCompleted, OnInProgress, OnUnknown, Options};
use super::error::{CodecError, Error, Failure, encode};
use super::fingerprint::Fingerprint;
use super::reconcile::{Hook, Reconciled};
use super::record::{ClaimOutcome, ClaimRequest, OnExpired, Resolution};
use super::store::Store;
use crate::clock::Clock;
use crate::store::{Fence, Key, LostReason, Owner, Settle, Token, lease};

const POLL_FIRST: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(500);
/// How often a waiter polls a store that wakes it when the holder settles.
const POLL_BACKSTOP: Duration = Duration::from_secs(2);

/// A finished execution's value, serialized: shared by every caller of one flight.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// This execution ran the work.
    Executed(Arc<[u8]>),
    /// The value was stored before (or settled by a reconcile hook).
    Replayed(Arc<[u8]>),
}

/// Why an execution produced no value, with the work's error still serialized; cloned to
/// every caller of one flight, each of which decodes it.
pub(crate) type Halt = Error<Arc<[u8]>>;

/// The state shared by every clone of a `Once`.
#[derive(Debug)]
pub(crate) struct Engine<S> {
    pub(crate) store: S,
    pub(crate) options: Options,
    pub(crate) clock: Clock,
}

impl<S: Store> Engine<S> {
    /// Claims `key` until this call holds it, gets an answer, or gives up waiting.
    pub(crate) async fn execute<T, E, C, F, Fut>(
        &self,
        key: Key,
        fingerprint: Fingerprint,
        mut reconcile: Option<Hook>,
        work: F,
    ) -> Result<Answer, Halt>
    where
        T: Serialize,
        E: Serialize,
        C: Lead<S, T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, Failure<E>>>,
    {
        let started = self.clock.now();
        let mut pause = POLL_FIRST;
        let mut on_expired = match (&reconcile, self.options.on_unknown) {
            (None, OnUnknown::Rerun) => OnExpired::TakeOver,
            _ => OnExpired::MarkUnknown,
        };
        let mut waiting_for: Option<Fence> = None;
        loop {
            let granted_at = Instant::now();
            let req = ClaimRequest {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                owner: Owner::random(),
                lease: self.options.lease.lease(),
                on_expired,
                waiting_for,
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
                    return self.lead(&key, token, granted_at, work).await;
                }
                ClaimOutcome::InProgress { holder, .. } => {
                    let OnInProgress::Wait { deadline } = self.options.on_in_progress else {
                        tracing::debug!(%key, "once: conflict");
                        return Err(Error::Conflict);
                    };
                    waiting_for = Some(holder.fence);
                    let waited = self.clock.now().saturating_duration_since(started);
                    if waited >= deadline {
                        return Err(Error::WaitTimedOut);
                    }
                    // A store that wakes waiters is polled only as a backstop.
                    let within = match self.store.wakes_waiters() {
                        true => POLL_BACKSTOP,
                        false => pause,
                    };
                    let within = within.min(deadline - waited);
                    self.store.await_change(&key, granted_at, within).await;
                    pause = (pause * 2).min(POLL_MAX);
                }
                ClaimOutcome::Completed { result } => {
                    return match self.options.on_completed {
                        OnCompleted::Replay => Ok(Answer::Replayed(result.into())),
                        OnCompleted::Reject => Err(Error::AlreadyDone),
                    };
                }
                ClaimOutcome::Failed { error, retryable } => {
                    return Err(Error::Failed(Failure {
                        error: error.into(),
                        retryable,
                    }));
                }
                ClaimOutcome::Mismatch => return Err(Error::Mismatch),
                ClaimOutcome::Unknown { previous } => {
                    let Some(hook) = reconcile.take() else {
                        return Err(Error::OutcomeUnknown);
                    };
                    match self.reconcile(&key, previous, hook).await? {
                        Some(answer) => return Ok(answer),
                        None => on_expired = OnExpired::TakeOverFrom(previous),
                    }
                }
            }
        }
    }

    /// Asks the call's hook about the unknown attempt held by `previous`: `Some` answer when
    /// the hook settled it (or the record changed meanwhile and must be claimed again: `None`
    /// with the next claim taking over only from `previous`, which then finds the new state).
    async fn reconcile(
        &self,
        key: &Key,
        previous: Token,
        hook: Hook,
    ) -> Result<Option<Answer>, Halt> {
        let decided = hook(key.clone()).await.map_err(|e| Error::Codec(e.0))?;
        let decision = match &decided {
            Reconciled::Done(_) => "done",
            Reconciled::RunAgain => "run_again",
            Reconciled::LeaveUnknown => "leave_unknown",
        };
        tracing::info!(%key, fence = previous.fence.0, decision, "once: reconciled");
        metrics::counter!("tollgate_once_reconciled_total",
            "namespace" => key.namespace().to_owned(), "decision" => decision)
        .increment(1);
        match decided {
            Reconciled::Done(result) => {
                let shared: Arc<[u8]> = result.as_slice().into();
                let resolution = Resolution::Completed { result };
                let retention = self.options.retention;
                match self
                    .store
                    .resolve(key, previous, resolution, retention)
                    .await?
                {
                    Settle::Accepted => Ok(Some(Answer::Replayed(shared))),
                    // Settled or taken over meanwhile: the next claim sees what happened.
                    Settle::Fenced => Ok(None),
                }
            }
            Reconciled::RunAgain => Ok(None),
            Reconciled::LeaveUnknown => Err(Error::OutcomeUnknown),
        }
    }

    /// Runs the work while keeping the lease, then stores its outcome.
    async fn lead<T, E, C, F, Fut>(
        &self,
        key: &Key,
        token: Token,
        granted_at: Instant,
        work: F,
    ) -> Result<Answer, Halt>
    where
        T: Serialize,
        E: Serialize,
        C: Lead<S, T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, Failure<E>>>,
    {
        let (store, lease) = (&self.store, self.options.lease.lease());
        let (keeper, _lost) = lease::keep(key, self.options.lease, granted_at, move || {
            store.renew(key, token, lease)
        });
        let completion = Completion {
            key: key.clone(),
            token,
            retention: self.options.retention,
        };
        let run = async {
            match work().await {
                Ok(done) => done.settle(self, completion).await,
                Err(failure) => self.store_failure(&completion, failure).await,
            }
        };
        tokio::select! {
            biased;
            answer = run => answer,
            reason = keeper => Err(lost(key, token, reason)),
        }
    }

    /// Records the work's failure; a retryable one frees the key at once.
    async fn store_failure<E: Serialize>(
        &self,
        completion: &Completion,
        Failure { error, retryable }: Failure<E>,
    ) -> Result<Answer, Halt> {
        let bytes = self.encoded(completion, encode(&error)).await?;
        let error: Arc<[u8]> = bytes.as_slice().into();
        let kept = if retryable {
            Duration::ZERO
        } else {
            completion.retention
        };
        let Completion { key, token, .. } = completion;
        match self.store.fail(key, *token, bytes, retryable, kept).await? {
            Settle::Accepted => Err(Error::Failed(Failure { error, retryable })),
            Settle::Fenced => Err(fenced(key, *token)),
        }
    }

    /// Stores a plain work's (serialized) value.
    async fn store_value(
        &self,
        completion: Completion,
        encoded: Result<Vec<u8>, CodecError>,
    ) -> Result<Answer, Halt> {
        let result = self.encoded(&completion, encoded).await?;
        let shared: Arc<[u8]> = result.as_slice().into();
        let Completion {
            key,
            token,
            retention,
        } = completion;
        match self.store.complete(&key, token, result, retention).await? {
            Settle::Accepted => Ok(Answer::Executed(shared)),
            Settle::Fenced => Err(fenced(&key, token)),
        }
    }

    /// Maps what a transactional commit did onto the call's answer.
    async fn committed(
        &self,
        completion: Completion,
        committed: Committed,
    ) -> Result<Answer, Halt> {
        match committed {
            Committed::Completed { result } => Ok(Answer::Executed(result.into())),
            Committed::Failed { error, retryable } => Err(Error::Failed(Failure {
                error: error.into(),
                retryable,
            })),
            Committed::Fenced => Err(fenced(&completion.key, completion.token)),
            Committed::Unencodable(msg) => {
                self.free(&completion).await;
                Err(Error::Codec(msg))
            }
        }
    }

    /// A value serialized for the store; when it could not be, frees the key (nothing storable
    /// was produced, so the next call may run again) and reports the codec error.
    async fn encoded(
        &self,
        completion: &Completion,
        encoded: Result<Vec<u8>, CodecError>,
    ) -> Result<Vec<u8>, Halt> {
        match encoded {
            Ok(bytes) => Ok(bytes),
            Err(e) => {
                self.free(completion).await;
                Err(Error::Codec(e.0))
            }
        }
    }

    async fn free(&self, Completion { key, token, .. }: &Completion) {
        let _ = self
            .store
            .fail(key, *token, Vec::new(), true, Duration::ZERO)
            .await;
    }
}

/// How the value a holder's work produced is settled in the store: a plain [`Value`] stored
/// by the engine, or a [`Transact`] that commits the work's rows with the completion.
pub(crate) trait Lead<S, T, E> {
    fn settle(
        self,
        engine: &Engine<S>,
        completion: Completion,
    ) -> impl Future<Output = Result<Answer, Halt>> + Send;
}

/// Plain work: the value itself, stored by the engine.
pub(crate) struct Value<T>(pub(crate) T);

impl<S: Store, T: Serialize + Send, E> Lead<S, T, E> for Value<T> {
    async fn settle(self, engine: &Engine<S>, completion: Completion) -> Result<Answer, Halt> {
        let encoded = encode(&self.0);
        engine.store_value(completion, encoded).await
    }
}

/// Committed work: the store writes the rows and the completion together.
pub(crate) struct Transact<C>(pub(crate) C);

impl<S: Store, C: Commit<S>> Lead<S, C::Value, C::Error> for Transact<C> {
    async fn settle(self, engine: &Engine<S>, completion: Completion) -> Result<Answer, Halt> {
        let committed = self.0.commit(&engine.store, completion.clone()).await?;
        engine.committed(completion, committed).await
    }
}

fn lost(key: &Key, token: Token, reason: LostReason) -> Halt {
    tracing::warn!(%key, fence = token.fence.0, %reason, "once: lease lost");
    Error::Fenced
}

fn fenced(key: &Key, token: Token) -> Halt {
    tracing::warn!(%key, fence = token.fence.0, "once: fenced");
    Error::Fenced
}
