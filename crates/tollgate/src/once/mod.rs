//! Exactly-once execution of a keyed operation, backed by a store: the toll gate itself.
//!
//! [`Once::run`] takes a [`Key`], a [`Fingerprint`] of the request and the work (a paid LLM
//! call, a payment). The first claimant of the key runs the work; its result is serialized
//! (`serde_json`) into the [`Store`], and later calls get it back instead of paying again.
//!
//! A record moves absent → in progress (owner, [`Fence`], lease) → completed (result) | failed
//! (error, retryable or not); an attempt whose holder vanished is of unknown outcome.
//!
//! # Guarantees under concurrency
//! - **One claim wins per key**: every store operation is one atomic step applying the rules
//!   of [`transition`] (no check-then-insert), so 1,000 racers — tasks or processes — get
//!   exactly one [`ClaimOutcome::Acquired`]. The others get [`Error::Conflict`] (HTTP 409) or,
//!   with [`OnInProgress::Wait`], the holder's result.
//! - **Calls of one key inside a process are coalesced before the store** (with
//!   [`crate::flight`]): in `Conflict` mode the extra callers are turned away without a store
//!   round trip; in `Wait` mode they share the holder's execution.
//! - A completed key replays its stored result ([`Output::replayed`]) or is rejected
//!   ([`OnCompleted::Reject`]); the same key with another fingerprint is [`Error::Mismatch`]
//!   (HTTP 422). A retryable [`Failure`] frees the key; a permanent one is replayed.
//! - **Whether a lease has expired is decided by the store's own clock**: leases and retention
//!   are passed as durations and the store stamps them with its time (see [`crate::store`]),
//!   so engines on machines whose clocks disagree never take over each other's live leases
//!   (conformance case `clock_skew_of_engines_never_takes_over_a_live_lease`).
//! - **A crashed holder is taken over with a higher fence**, and its late completion is
//!   rejected: it gets [`Error::Fenced`]. The holder keeps its lease with the shared lease
//!   keeper ([`crate::store::lease`]) while the work runs; when the store rejects a renewal,
//!   or no renewal succeeded for a whole lease, the work is dropped and the call returns
//!   `Fenced`.
//! - **The work's own writes and the completion can commit in one transaction**
//!   ([`Call::run_committed`] with a backend's [`Commit`], e.g. `tollgate_sqlite::InTransaction`):
//!   a stored result never sits beside an unfinished claim.
//! - **An attempt of unknown outcome is never re-run before a reconcile hook has been asked**
//!   ([`Call::reconcile`]: done with this result / run again / leave unknown); without a hook it
//!   is reported as [`Error::OutcomeUnknown`] ([`OnUnknown::Surface`], the default) or taken
//!   over ([`OnUnknown::Rerun`]). An operator settles a key by hand with [`Once::settle`].
//! - A waiter in [`OnInProgress::Wait`] receives the failure of the attempt it waited for —
//!   even a retryable one — rather than running the work again.
//! - Keys are namespaced and never concatenated ([`Key::encode`] is length-prefixed).
//!
//! **409 or 422?** A different fingerprint under a key that is still in flight is
//! [`Error::Mismatch`] (422), not `Conflict` (409): the store compares fingerprints before it
//! looks at the lease, because a 409 invites a retry that could only ever get the 422.
//!
//! # Cancellation
//! The work runs in a task owned by no caller (a [`crate::flight`] execution with
//! [`always_in_task`](crate::flight::Builder::always_in_task)): dropping the call that
//! started it does not cancel it, so a paid result is still stored and replayed to the next
//! call. The renewal loop lives in that task and ends with the work; nothing is left behind. A
//! work that panics leaves its record in progress until the lease runs out: like a crash, its
//! outcome is then unknown.
//!
//! # Observability
//! tracing events for every decision (`claimed`, `conflict`, `took over`, `lease lost`,
//! `fenced`, `reconciled`), and the counters `tollgate_once_calls_total{namespace, outcome}`,
//! `tollgate_once_takeovers_total{namespace}`, `tollgate_once_reconciled_total{namespace,
//! decision}` and `tollgate_lease_lost_total{reason}` through the `metrics` facade.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use tollgate::once::{Error, Failure, Fingerprint, Key, MemoryStore, Once};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let once = Once::new(MemoryStore::new());
//! let calls = Arc::new(AtomicUsize::new(0));
//! let report = |calls: Arc<AtomicUsize>| async move {
//!     calls.fetch_add(1, Ordering::SeqCst);
//!     Ok::<_, Failure<String>>("report of 2026-11-21".to_string())
//! };
//! let key = Key::new("daily-report", "user-1/2026-11-21");
//! let first = once.run(key.clone(), Fingerprint::new("letters-v1"), {
//!     let calls = calls.clone();
//!     move || report(calls)
//! });
//! let first = first.await.unwrap();
//! assert!(!first.replayed);
//! // The same request again: the stored report, no second paid call.
//! let again = once.run(key.clone(), Fingerprint::new("letters-v1"), {
//!     let calls = calls.clone();
//!     move || report(calls)
//! });
//! let again = again.await.unwrap();
//! assert_eq!((again.value, again.replayed), (first.value, true));
//! // Another request under the same key is refused.
//! let other = once.run(key, Fingerprint::new("letters-v2"), move || report(calls.clone()));
//! assert_eq!(other.await, Err(Error::Mismatch));
//! # }
//! ```

mod call;
mod commit;
mod config;
mod engine;
mod error;
mod fingerprint;
mod memory;
mod reconcile;
mod record;
mod store;
pub mod transition;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use call::Call;
pub use commit::{Commit, Committed, Completion};
pub use config::{Builder, OnCompleted, OnInProgress, OnUnknown};
pub use error::{CodecError, Error, ErrorKind, Failure, Output, SettleError, decode, encode};
pub use fingerprint::Fingerprint;
pub use memory::MemoryStore;
pub use reconcile::{Reconciled, Settlement};
pub use record::{ClaimOutcome, ClaimRequest, OnExpired, Record, RecordState, Resolution};
pub use store::Store;
// The shared store vocabulary, re-exported where `once` users have always found it.
pub use crate::store::{Fence, Key, Owner, Settle, StoreError, StoreErrorKind, Timestamp, Token};

use crate::flight::Flight;
use crate::keyed;
use engine::{Answer, Engine, Halt};

type FlightKey = (Key, Fingerprint);

/// The exactly-once engine over a [`Store`]; see the [module](self) docs. Cheap to clone:
/// clones share the store and the in-process coalescing.
pub struct Once<S> {
    engine: Arc<Engine<S>>,
    flight: Flight<FlightKey, Answer, Halt>,
    admitted: keyed::Mutex<FlightKey>,
}

impl<S: Store> Once<S> {
    /// An engine with the default options (Conflict, Replay, Surface, 30 s lease, 24 h
    /// retention).
    pub fn new(store: S) -> Self {
        Builder::new(store).build()
    }

    /// Configures an engine.
    pub fn builder(store: S) -> Builder<S> {
        Builder::new(store)
    }

    pub(crate) fn from_builder(builder: Builder<S>) -> Self {
        Once {
            engine: Arc::new(Engine {
                store: builder.store,
                options: builder.options,
                clock: builder.clock,
            }),
            // In a task from the start: the work renews its lease, which must go on while
            // the caller that leads it is not polled (a buffered stream of calls, say).
            flight: Flight::builder().always_in_task(true).build(),
            admitted: keyed::Mutex::new(),
        }
    }

    /// Runs `work` once for `key`, or answers from the key's record; see the module docs.
    /// The same as `self.call(key, fingerprint).run(work)`; [`Once::call`] adds a reconcile
    /// hook or a transactional commit.
    ///
    /// Counts every call in `tollgate_once_calls_total{namespace, outcome}` (`executed`,
    /// `replayed`, or the [`ErrorKind`] of the error).
    pub async fn run<T, E, F, Fut>(
        &self,
        key: Key,
        fingerprint: Fingerprint,
        work: F,
    ) -> Result<Output<T>, Error<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Failure<E>>> + Send + 'static,
    {
        self.call(key, fingerprint).run(work).await
    }

    /// A call of `key` to configure before it runs: [`Call::reconcile`], then [`Call::run`] or
    /// [`Call::run_committed`].
    pub fn call<T>(&self, key: Key, fingerprint: Fingerprint) -> Call<'_, S, T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        Call::new(self, key, fingerprint)
    }

    /// Settles a key whose attempt is of unknown outcome, by hand (an operator who checked
    /// what the vanished attempt did). Only an attempt recorded as unknown, or in progress
    /// under a lease that ran out, is settled; a live holder is never overwritten.
    pub async fn settle<T: Serialize, E: Serialize>(
        &self,
        key: &Key,
        settlement: Settlement<T, E>,
    ) -> Result<(), SettleError> {
        let resolution = settlement.encode().map_err(|e| SettleError::Codec(e.0))?;
        let store = &self.engine.store;
        let record = store.read(key).await?.ok_or(SettleError::NotFound)?;
        let holder = match record.state {
            RecordState::Unknown { .. } | RecordState::InProgress { .. } => record.holder(),
            _ => None,
        }
        .ok_or(SettleError::NotUnknown)?;
        let retention = match &resolution {
            Resolution::Failed {
                retryable: true, ..
            } => std::time::Duration::ZERO,
            _ => self.engine.options.retention,
        };
        match store.resolve(key, holder, resolution, retention).await? {
            Settle::Accepted => {
                tracing::info!(%key, fence = holder.fence.0, "once: settled by hand");
                Ok(())
            }
            Settle::Fenced => {
                // A live holder (it renewed since) is not unknown; anything else changed hands.
                let live = store
                    .read(key)
                    .await?
                    .filter(|r| matches!(r.state, RecordState::InProgress { .. }));
                match live.and_then(|r| r.holder()) == Some(holder) {
                    true => Err(SettleError::NotUnknown),
                    false => Err(SettleError::Changed),
                }
            }
        }
    }

    /// Removes the finished records whose retention has ended on the store's clock; returns
    /// how many.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        self.engine.store.purge().await
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.engine.store
    }
}

impl<S> Clone for Once<S> {
    fn clone(&self) -> Self {
        Once {
            engine: Arc::clone(&self.engine),
            flight: self.flight.clone(),
            admitted: self.admitted.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Once<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("store", &self.engine.store)
            .field("options", &self.engine.options)
            .field("in_flight", &self.flight.len())
            .finish()
    }
}
