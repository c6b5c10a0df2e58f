//! A durable outbox: side effects that are **never silently lost**, applied by workers that
//! hold a lease with a heartbeat and complete **fenced**.
//!
//! An [`Effect`] (a handler `kind`, an idempotency [`Key`](crate::store::Key), a payload) is
//! enqueued in an [`Outbox`] — by durable backends inside the caller's own transaction
//! (`tollgate_sqlite::SqliteOutbox::enqueue_in`), so it exists exactly when the caller's
//! writes do. [`Worker`]s claim effects, apply them with the [`Handler`] of their kind and
//! record the outcome:
//!
//! - **a long effect is not taken over while it runs**: the claim's lease is renewed by the
//!   shared lease keeper ([`crate::store::lease`]) as long as the handler runs;
//! - **a stalled worker's late "done" is rejected** (fenced by the claim's token), because
//!   another worker took the effect over once its lease ran out on the store's clock;
//! - a failure is retried with exponential backoff and jitter, or after the handler's
//!   `Retry-After`; after the last attempt the effect is **dead-lettered** with its last error,
//!   listed by [`Outbox::dead_letters`] and re-queued by [`Outbox::requeue`]; attempts that
//!   end with no outcome (a lost lease, a crashed worker, an effect that kills its worker)
//!   count too, so such an effect is dead-lettered rather than re-applied forever
//!   (`tollgate_testkit::outbox_cases::outbox_an_effect_whose_workers_keep_crashing_is_dead_lettered_after_its_last_attempt`);
//! - the handler's receipt is stored with the effect; its idempotency key lets the handler
//!   apply it exactly once (with [`crate::once`]) even when an attempt is repeated.
//!
//! [`MemoryOutbox`] keeps effects in memory (tests); `tollgate_sqlite::SqliteOutbox` keeps them
//! durably. Side tasks that must not break their caller are in [`crate::side`].
//!
//! # Example
//! ```
//! use tollgate::outbox::{Effect, HandlerError, MemoryOutbox, Outbox, Worker, WorkerOptions};
//! use tollgate::store::Key;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let outbox = MemoryOutbox::new();
//! let effect = Effect::new("save-questions", Key::new("questions", "ann/1"), &["q1", "q2"]).unwrap();
//! let id = outbox.enqueue(effect).await.unwrap();
//! let worker = Worker::new(outbox.clone(), WorkerOptions::default()).handler(
//!     "save-questions",
//!     |effect: Effect, _attempt| async move {
//!         let questions: Vec<String> = effect.payload().map_err(|e| HandlerError::permanent(e.0))?;
//!         Ok(format!("saved {}", questions.len()).into_bytes())
//!     },
//! );
//! let batch = worker.run_batch().await.unwrap();
//! assert_eq!((batch.claimed, batch.done), (1, 1));
//! let record = outbox.read(id).await.unwrap().unwrap();
//! assert_eq!(record.attempts, 1);
//! # }
//! ```

mod effect;
mod handler;
mod memory;
mod store;
pub mod transition;
mod worker;

pub use effect::{
    Claimed, Completion, DeadLetter, Effect, EffectId, EffectRecord, EffectState, OutboxStats,
};
pub use handler::{Applied, Handler, HandlerError};
pub use memory::MemoryOutbox;
pub use store::Outbox;
pub use worker::{Batch, Worker, WorkerOptions};

/// Counts an effect written to an outbox in `tollgate_outbox_effects_total{kind,
/// outcome="enqueued"}`; every [`Outbox`] backend calls it when it writes one. An effect
/// enqueued inside a caller's transaction is counted when it is written, so one whose
/// transaction rolls back is counted too.
pub fn note_enqueued(effect: &Effect) {
    metrics::counter!("tollgate_outbox_effects_total",
        "kind" => effect.kind.clone(), "outcome" => "enqueued")
    .increment(1);
}
