//! The [`Outbox`] trait: where effects wait, durably, until a worker applies them.

use std::future::Future;
use std::time::Duration;

use super::effect::{Claimed, Completion, DeadLetter, Effect, EffectId, EffectRecord, OutboxStats};
use crate::store::{Owner, Settle, StoreError, Token};

/// Storage of effects. **Every method is one atomic step on the backend** applying the rules
/// of [`transition`](super::transition) with the store's own time; a claim takes effects no
/// other worker holds (on PostgreSQL with `FOR UPDATE SKIP LOCKED`), and every write of a
/// worker is fenced by the token of its claim, so a zombie worker's "done" is rejected.
pub trait Outbox: Send + Sync + 'static {
    /// Enqueues an effect on its own (backends with transactions also offer an enqueue inside
    /// the caller's transaction, visible only when it commits).
    fn enqueue(&self, effect: Effect) -> impl Future<Output = Result<EffectId, StoreError>> + Send;

    /// Claims up to `limit` claimable effects, oldest first, for `worker` with `lease`.
    fn claim(
        &self,
        worker: Owner,
        lease: Duration,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Claimed>, StoreError>> + Send;

    /// Extends the holder's lease (a heartbeat).
    fn heartbeat(
        &self,
        id: EffectId,
        token: Token,
        lease: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Marks the effect applied, storing the handler's receipt.
    fn complete(
        &self,
        id: EffectId,
        token: Token,
        receipt: Vec<u8>,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Marks several effects applied, each **fenced by its own token** exactly as
    /// [`Outbox::complete`] is; answers one [`Settle`] per completion, in order. A completion
    /// whose claim was taken over is [`Settle::Fenced`] without affecting the others. Ids
    /// should be distinct: a repeated one is accepted at most once, as if the completions ran
    /// one after another in order.
    ///
    /// The default runs [`Outbox::complete`] once per effect; durable backends override it
    /// to write the whole batch in one statement or transaction (one commit instead of one
    /// per effect). On an error some completions may have been written (the default) or none
    /// (a backend writing them atomically); a completion not written leaves its effect in
    /// flight, to be taken over once its lease runs out, like a failed [`Outbox::complete`].
    fn complete_all(
        &self,
        completions: Vec<Completion>,
    ) -> impl Future<Output = Result<Vec<Settle>, StoreError>> + Send {
        async move {
            let mut settled = Vec::with_capacity(completions.len());
            for c in completions {
                settled.push(self.complete(c.id, c.token, c.receipt).await?);
            }
            Ok(settled)
        }
    }

    /// Puts the effect back, claimable again `after` from now, with the attempt's error.
    fn retry(
        &self,
        id: EffectId,
        token: Token,
        error: String,
        after: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Moves the effect to the dead letters with its last error.
    fn dead_letter(
        &self,
        id: EffectId,
        token: Token,
        error: String,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Up to `limit` dead letters, oldest first.
    fn dead_letters(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// Re-queues a dead letter with a fresh attempt count; `false` when `id` is not dead.
    fn requeue(&self, id: EffectId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The effect's record.
    fn read(
        &self,
        id: EffectId,
    ) -> impl Future<Output = Result<Option<EffectRecord>, StoreError>> + Send;

    /// Counts by state and the oldest effect not yet applied.
    fn stats(&self) -> impl Future<Output = Result<OutboxStats, StoreError>> + Send;
}
