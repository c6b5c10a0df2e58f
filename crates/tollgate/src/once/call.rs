//! [`Call`]: one call of a key, configured before it runs.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::commit::Commit;
use super::engine::{Answer, Halt, Lead, Transact, Value};
use super::error::{Error, Failure, Output, decode};
use super::fingerprint::Fingerprint;
use super::reconcile::{self, Hook, Reconciled};
use super::store::Store;
use super::{OnInProgress, Once};
use crate::flight::{self, Role};
use crate::store::Key;

/// One call of a key, made by [`Once::call`]: optionally with a reconcile hook, then run with
/// [`Call::run`] (the engine stores the value) or [`Call::run_committed`] (the store commits
/// the work's own writes with the completion).
#[must_use = "a call does nothing until it is run"]
pub struct Call<'a, S, T> {
    once: &'a Once<S>,
    key: Key,
    fingerprint: Fingerprint,
    reconcile: Option<Hook>,
    value: PhantomData<fn() -> T>,
}

impl<'a, S: Store, T> Call<'a, S, T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new(once: &'a Once<S>, key: Key, fingerprint: Fingerprint) -> Self {
        Call {
            once,
            key,
            fingerprint,
            reconcile: None,
            value: PhantomData,
        }
    }

    /// Asks `hook` before anything re-runs an attempt of unknown outcome (its holder vanished
    /// after it may have paid): it answers from the work's own records whether that attempt
    /// had its effect ([`Reconciled::Done`] with the result, which settles the key),
    /// should run again ([`Reconciled::RunAgain`]: taken over with a higher fence) or stays
    /// unknown. With a hook the engine's [`OnUnknown`](super::OnUnknown) policy is not used;
    /// the hook is asked at most once per call.
    pub fn reconcile<F, Fut>(mut self, hook: F) -> Self
    where
        F: FnOnce(Key) -> Fut + Send + 'static,
        Fut: Future<Output = Reconciled<T>> + Send + 'static,
    {
        self.reconcile = Some(reconcile::hook(hook));
        self
    }

    /// Runs `work` once for the key, or answers from the key's record; the engine stores the
    /// work's value. See the [module](super) docs.
    pub async fn run<E, F, Fut>(self, work: F) -> Result<Output<T>, Error<E>>
    where
        E: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Failure<E>>> + Send + 'static,
    {
        let work = move || async move { work().await.map(Value) };
        self.execute(work).await
    }

    /// Runs `work` once for the key — its paid call outside any transaction — and then the
    /// [`Commit`] it returns: the store writes the work's rows and the completion in **one**
    /// transaction, fenced by this call's token, so both or neither are stored. See
    /// [`commit`](super::Commit).
    pub async fn run_committed<E, C, F, Fut>(self, work: F) -> Result<Output<T>, Error<E>>
    where
        E: Serialize + DeserializeOwned + Send + 'static,
        C: Commit<S, Value = T, Error = E>,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<C, Failure<E>>> + Send + 'static,
    {
        let work = move || async move { work().await.map(Transact) };
        self.execute(work).await
    }

    async fn execute<E, L, F, Fut>(self, work: F) -> Result<Output<T>, Error<E>>
    where
        E: Serialize + DeserializeOwned + Send + 'static,
        L: Lead<S, T, E> + Send,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<L, Failure<E>>> + Send + 'static,
    {
        let namespace = self.key.namespace().to_owned();
        let result = self.coalesced(work).await;
        let outcome = match &result {
            Ok(output) if output.replayed => "replayed",
            Ok(_) => "executed",
            Err(e) => e.kind().as_str(),
        };
        metrics::counter!("tollgate_once_calls_total", "namespace" => namespace, "outcome" => outcome)
            .increment(1);
        result
    }

    /// Coalesces the calls of one key in this process before they reach the store.
    async fn coalesced<E, L, F, Fut>(self, work: F) -> Result<Output<T>, Error<E>>
    where
        E: Serialize + DeserializeOwned + Send + 'static,
        L: Lead<S, T, E> + Send,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<L, Failure<E>>> + Send + 'static,
    {
        let Call {
            once,
            key,
            fingerprint,
            reconcile,
            ..
        } = self;
        let call = (key.clone(), fingerprint.clone());
        // In Conflict mode a second caller in this process is turned away before the store.
        let admitted = match once.engine.options.on_in_progress {
            OnInProgress::Conflict => match once.admitted.try_lock(call.clone()) {
                Some(guard) => Some(guard),
                None => return Err(Error::Conflict),
            },
            OnInProgress::Wait { .. } => None,
        };
        let engine = Arc::clone(&once.engine);
        let outcome = once
            .flight
            .run(call, move || async move {
                let _admitted = admitted;
                engine.execute(key, fingerprint, reconcile, work).await
            })
            .await;
        let joined = outcome.role != Role::Leader;
        match outcome.result {
            Ok(Answer::Executed(bytes)) => output(&bytes, joined),
            Ok(Answer::Replayed(bytes)) => output(&bytes, true),
            Err(flight::Error::Failed(halt)) => Err(halt_error(halt)),
            Err(flight::Error::Panicked(msg)) => Err(Error::Panicked(msg)),
            Err(_) => Err(Error::Panicked("the execution was aborted".to_owned())),
        }
    }
}

fn output<T: DeserializeOwned, E>(bytes: &[u8], replayed: bool) -> Result<Output<T>, Error<E>> {
    let value = decode(bytes)?;
    Ok(Output { value, replayed })
}

fn halt_error<E: DeserializeOwned>(halt: Halt) -> Error<E> {
    halt.decode_failure(|bytes| decode(&bytes).map_err(|e| e.0))
}

impl<S: fmt::Debug, T> fmt::Debug for Call<'_, S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("key", &self.key)
            .field("fingerprint", &self.fingerprint)
            .field("reconcile", &self.reconcile.is_some())
            .finish()
    }
}
