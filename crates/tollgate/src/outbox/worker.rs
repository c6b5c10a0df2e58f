//! [`Worker`]: claims effects, applies them under a kept lease, and settles them fenced.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::effect::{Claimed, Completion, EffectId};
use super::handler::{Handler, HandlerError};
use super::store::Outbox;
use crate::flight::panic_message;
use crate::policy::Backoff;
use crate::store::{LeaseTiming, Owner, Settle, StoreError, lease};

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Effects claimed.
    pub claimed: usize,
    /// Applied and completed.
    pub done: usize,
    /// Failed and put back for a retry.
    pub retried: usize,
    /// Failed their last attempt (or permanently) and dead-lettered.
    pub dead_lettered: usize,
    /// Rejected by the fence: another worker took them over (this worker had stalled).
    pub fenced: usize,
}

/// Claims and applies effects from an [`Outbox`]; cheap to clone (clones share handlers).
///
/// Each claimed effect is applied by its kind's [`Handler`] in its own task, while the shared
/// lease keeper ([`crate::store::lease`]) renews its lease (the heartbeat), so a long effect is
/// not taken over while it runs; when the lease is lost the attempt is dropped. The outcome is
/// written fenced by the claim's token: done (with the handler's receipt; effects whose
/// handlers finished together are written together by [`Outbox::complete_all`]), retried after an
/// exponential backoff with jitter — or the handler's `Retry-After` when it gives one — or
/// dead-lettered after `max_attempts` (or at once for a permanent failure, an unknown kind or
/// a panicking handler). Attempts that end with no outcome — the lease lost, the worker
/// crashed — count too: an effect claimed for the `max_attempts + 1`-th time is dead-lettered
/// without being applied, so an effect that kills its worker is not re-applied forever. Counts `tollgate_outbox_effects_total{kind, outcome}`.
pub struct Worker<S> {
    outbox: Arc<S>,
    handlers: Arc<HashMap<String, Arc<dyn Handler>>>,
    owner: Owner,
    options: WorkerOptions,
}

/// How a [`Worker`] claims and retries.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Effects claimed and applied at once (default 16).
    pub batch: usize,
    /// The lease of a claimed effect and how often it is renewed (default 30 s / 10 s).
    pub lease: LeaseTiming,
    /// How long an idle worker waits before it looks again (default 100 ms).
    pub poll_every: Duration,
    /// Attempts before an effect is dead-lettered (default 5).
    pub max_attempts: u32,
    /// The delay before retry `n` (default exponential from 100 ms to 1 min, full jitter).
    pub backoff: Backoff,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            batch: 16,
            lease: LeaseTiming::new(Duration::from_secs(30), Duration::from_secs(10)),
            poll_every: Duration::from_millis(100),
            max_attempts: 5,
            backoff: Backoff::exponential(Duration::from_millis(100), Duration::from_secs(60)),
        }
    }
}

impl<S: Outbox> Worker<S> {
    /// A worker over `outbox` with no handlers yet.
    pub fn new(outbox: S, options: WorkerOptions) -> Self {
        Worker {
            outbox: Arc::new(outbox),
            handlers: Arc::default(),
            owner: Owner::random(),
            options,
        }
    }

    /// Registers the handler of effects of `kind` (replacing any before).
    #[must_use]
    pub fn handler(mut self, kind: impl Into<String>, handler: impl Handler) -> Self {
        Arc::make_mut(&mut self.handlers).insert(kind.into(), Arc::new(handler));
        self
    }

    /// The outbox.
    pub fn outbox(&self) -> &S {
        &self.outbox
    }

    /// Claims one batch and applies it; returns what happened once every claimed effect is
    /// settled.
    ///
    /// Effects whose handlers finished together are marked done together, fenced one by one,
    /// with one [`Outbox::complete_all`] (one statement on PostgreSQL, one transaction on
    /// SQLite): quick handlers share one commit, while a slow handler holds no one's
    /// completion back — each write starts as soon as its effects finished, beside the
    /// attempts still running and any earlier write.
    pub async fn run_batch(&self) -> Result<Batch, StoreError> {
        let lease = self.options.lease.lease();
        let granted_at = Instant::now();
        let claimed = self
            .outbox
            .claim(self.owner, lease, self.options.batch.max(1))
            .await?;
        let mut batch = Batch {
            claimed: claimed.len(),
            ..Batch::default()
        };
        let mut attempts = JoinSet::new();
        for effect in claimed {
            let worker = self.clone();
            attempts.spawn(async move { worker.attempt(effect, granted_at).await });
        }
        let mut applied = Vec::new();
        let mut writes = JoinSet::new();
        let mut yielded = false;
        loop {
            let joined = match applied.is_empty() {
                true => attempts.join_next().await,
                false => attempts.try_join_next(),
            };
            let Some(joined) = joined else {
                if applied.is_empty() {
                    break; // every attempt joined and settled
                }
                if !yielded && !attempts.is_empty() {
                    // Let attempts that are about to finish join this write: yield as long as
                    // each yield lets at least one more attempt finish.
                    yielded = true;
                    tokio::task::yield_now().await;
                    continue;
                }
                // Written beside the attempts still running and any earlier write: a write
                // never waits for another, so batching adds no round trip to an effect.
                let (worker, applied) = (self.clone(), std::mem::take(&mut applied));
                writes.spawn(async move { worker.complete(applied).await });
                continue;
            };
            yielded = false;
            match joined {
                Ok(Ok(Attempted::Applied(done))) => applied.push(done),
                Ok(Ok(Attempted::Settled(outcome))) => batch.note(outcome),
                Ok(Err(e)) => tracing::warn!(error = %e, "outbox: settling an effect failed"),
                Err(e) => tracing::error!(error = %e, "outbox: an attempt task failed"),
            }
        }
        while let Some(written) = writes.join_next().await {
            match written {
                Ok(written) => batch.add(written),
                Err(e) => tracing::error!(error = %e, "outbox: a completion task failed"),
            }
        }
        Ok(batch)
    }

    /// Marks `applied` done with one [`Outbox::complete_all`]; counts each effect's outcome.
    async fn complete(&self, applied: Vec<Finished>) -> Batch {
        let mut batch = Batch::default();
        let (completions, kinds): (Vec<Completion>, Vec<String>) =
            applied.into_iter().map(|a| (a.completion, a.kind)).unzip();
        let ids: Vec<EffectId> = completions.iter().map(|c| c.id).collect();
        let settled = match self.outbox.complete_all(completions).await {
            Ok(settled) if settled.len() == ids.len() => settled,
            Ok(settled) => {
                tracing::error!(
                    sent = ids.len(),
                    answered = settled.len(),
                    "outbox: the store answered a batch of completions with a wrong count"
                );
                return batch;
            }
            Err(e) => {
                for id in ids {
                    tracing::warn!(effect = id.0, error = %e, "outbox: settling an effect failed");
                }
                return batch;
            }
        };
        for ((id, kind), settled) in ids.into_iter().zip(kinds).zip(settled) {
            match settled {
                Settle::Accepted => {
                    count(&kind, "done");
                    batch.note(Settlement::Done);
                }
                Settle::Fenced => batch.note(self.fenced(id, &kind)),
            }
        }
        batch
    }

    /// Runs batches until `shutdown` completes, waiting [`WorkerOptions::poll_every`] when
    /// there is nothing to do; a batch in progress finishes first.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let idle = match self.run_batch().await {
                Ok(batch) => batch.claimed == 0,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: claiming failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(self.options.poll_every) => {}
                }
            } else if futures_ready(&mut shutdown).await {
                return;
            }
        }
    }

    /// Applies one claimed effect under its kept lease and settles it.
    async fn attempt(
        &self,
        claimed: Claimed,
        granted_at: Instant,
    ) -> Result<Attempted, StoreError> {
        let Claimed {
            id,
            token,
            effect,
            attempt,
        } = claimed;
        let kind = effect.kind.clone();
        // At least one attempt, whatever `max_attempts` says (0 made one before this check).
        let max_attempts = self.options.max_attempts.max(1);
        if attempt > max_attempts {
            // The earlier attempts ended without an outcome (their lease lost, their worker
            // crashed or killed by the effect itself): applying it again could go on forever.
            let error = HandlerError::permanent(format!(
                "{} attempts ended without an outcome (a lost lease or a crashed worker); at \
                 most {} are made",
                attempt - 1,
                max_attempts
            ));
            let settled = self.settle_failure(id, token, &kind, attempt, error).await;
            return settled.map(Attempted::Settled);
        }
        let Some(handler) = self.handlers.get(&kind).cloned() else {
            let error = format!("no handler for effects of kind {kind:?}");
            let error = HandlerError::permanent(error);
            let settled = self.settle_failure(id, token, &kind, attempt, error).await;
            return settled.map(Attempted::Settled);
        };
        let (outbox, lease) = (Arc::clone(&self.outbox), self.options.lease.lease());
        let (keeper, _lost) = lease::keep(
            format!("effect {}", id.0),
            self.options.lease,
            granted_at,
            move || {
                let outbox = Arc::clone(&outbox);
                async move { outbox.heartbeat(id, token, lease).await }
            },
        );
        // A handler that panics while making its future (a closure's synchronous part) is a
        // panicking handler too: dead-lettered, not left in flight for the next claim.
        let applying = match catch_unwind(AssertUnwindSafe(|| handler.apply(effect, attempt))) {
            Ok(applying) => applying,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                let error = HandlerError::permanent(format!("the handler panicked: {message}"));
                let settled = self.settle_failure(id, token, &kind, attempt, error).await;
                return settled.map(Attempted::Settled);
            }
        };
        let applied = tokio::spawn(applying);
        // The handler runs in its own task (so its panic is caught); it ends with this attempt,
        // also when the attempt itself is dropped (a dropped `run_batch`).
        let _abort = AbortOnDrop(applied.abort_handle());
        let result = tokio::select! {
            biased;
            result = applied => result,
            reason = keeper => {
                tracing::warn!(effect = id.0, %reason, "outbox: lease lost, attempt dropped");
                count(&kind, "lost");
                return Ok(Attempted::Settled(Settlement::Fenced));
            }
        };
        let failed = match result {
            Ok(Ok(receipt)) => {
                let completion = Completion { id, token, receipt };
                return Ok(Attempted::Applied(Finished { completion, kind }));
            }
            Ok(Err(error)) => error,
            Err(join) => HandlerError::permanent(format!("the handler panicked: {join}")),
        };
        let settled = self.settle_failure(id, token, &kind, attempt, failed).await;
        settled.map(Attempted::Settled)
    }

    async fn settle_failure(
        &self,
        id: EffectId,
        token: crate::store::Token,
        kind: &str,
        attempt: u32,
        error: HandlerError,
    ) -> Result<Settlement, StoreError> {
        let last = error.permanent || attempt >= self.options.max_attempts;
        let message = error.message.clone();
        let settled = if last {
            self.outbox.dead_letter(id, token, message).await?
        } else {
            let backoff = self.options.backoff.delay(attempt);
            let after = error.retry_after.unwrap_or(backoff);
            self.outbox.retry(id, token, message, after).await?
        };
        if settled == Settle::Fenced {
            return Ok(self.fenced(id, kind));
        }
        tracing::warn!(effect = id.0, kind, attempt, error = %error, dead = last, "outbox: attempt failed");
        count(kind, if last { "dead_lettered" } else { "retried" });
        Ok(if last {
            Settlement::Dead
        } else {
            Settlement::Retried
        })
    }

    fn fenced(&self, id: EffectId, kind: &str) -> Settlement {
        tracing::warn!(
            effect = id.0,
            kind,
            "outbox: fenced, another worker took the effect over"
        );
        count(kind, "fenced");
        Settlement::Fenced
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How an effect's attempt was settled, for the batch's counts.
enum Settlement {
    Done,
    Retried,
    Dead,
    Fenced,
}

/// How one attempt ended: settled (a failure written, or the lease lost), or applied and
/// waiting to be marked done with the others of its batch.
enum Attempted {
    Settled(Settlement),
    Applied(Finished),
}

/// An applied effect not yet marked done, and its kind (for its metrics).
struct Finished {
    completion: Completion,
    kind: String,
}

impl Batch {
    fn note(&mut self, outcome: Settlement) {
        match outcome {
            Settlement::Done => self.done += 1,
            Settlement::Retried => self.retried += 1,
            Settlement::Dead => self.dead_lettered += 1,
            Settlement::Fenced => self.fenced += 1,
        }
    }

    fn add(&mut self, other: Batch) {
        self.claimed += other.claimed;
        self.done += other.done;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
        self.fenced += other.fenced;
    }
}

fn count(kind: &str, outcome: &'static str) {
    metrics::counter!("tollgate_outbox_effects_total", "kind" => kind.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Whether `shutdown` has completed, without waiting for it.
async fn futures_ready(shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> bool {
    tokio::select! {
        biased;
        () = shutdown.as_mut() => true,
        () = std::future::ready(()) => false,
    }
}

impl<S> Clone for Worker<S> {
    fn clone(&self) -> Self {
        Worker {
            outbox: Arc::clone(&self.outbox),
            handlers: Arc::clone(&self.handlers),
            owner: self.owner,
            options: self.options.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("outbox", &self.outbox)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish()
    }
}
