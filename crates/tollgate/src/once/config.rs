//! Building a [`Once`]: what to do with keys in progress, completed or of unknown outcome, and
//! the lease and retention times.

use std::time::Duration;

use super::Once;
use super::store::Store;
use crate::clock::Clock;
use crate::store::LeaseTiming;

/// What a call does when another call holds the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInProgress {
    /// Return [`Error::Conflict`](super::Error::Conflict) at once.
    Conflict,
    /// Wait for the holder's result, up to `deadline`, then return
    /// [`Error::WaitTimedOut`](super::Error::WaitTimedOut). Waiters in this process share the
    /// holder's execution; a holder in another process is polled in the store with exponential
    /// backoff (10 ms doubling to 500 ms, on tokio's timer) — or, on a store that wakes
    /// waiters ([`Store::wakes_waiters`](super::Store::wakes_waiters), PostgreSQL's
    /// `LISTEN/NOTIFY`), claimed again when the holder settles, with a poll every 2 s only as
    /// a backstop, and a holder whose lease runs out
    /// is taken over or reported by the [`OnUnknown`] policy. The deadline is measured on the
    /// engine's clock.
    Wait {
        /// How long a call waits in total.
        deadline: Duration,
    },
}

/// What a call does when the key was already completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnCompleted {
    /// Return the stored result (`replayed: true`).
    Replay,
    /// Return [`Error::AlreadyDone`](super::Error::AlreadyDone).
    Reject,
}

/// What a call without a reconcile hook does when a holder vanished after it may have had its
/// effect. A call with a hook ([`Call::reconcile`](super::Call::reconcile)) always asks it
/// first, whatever this says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUnknown {
    /// Take over with a higher fence and run the work again (pays again if the vanished
    /// attempt had paid).
    Rerun,
    /// Record the attempt as unknown and return
    /// [`Error::OutcomeUnknown`](super::Error::OutcomeUnknown) to this and every later call,
    /// until the record is settled: by its old holder reporting late, by a call's reconcile
    /// hook, by hand with [`Once::settle`], or by a [`Once`] with [`OnUnknown::Rerun`].
    Surface,
}

/// The engine's options; see [`Builder`] for the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) on_in_progress: OnInProgress,
    pub(crate) on_completed: OnCompleted,
    pub(crate) on_unknown: OnUnknown,
    pub(crate) lease: LeaseTiming,
    pub(crate) retention: Duration,
}

/// Configures a [`Once`]; obtained from [`Once::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<S> {
    pub(crate) store: S,
    pub(crate) options: Options,
    pub(crate) clock: Clock,
}

impl<S: Store> Builder<S> {
    pub(crate) fn new(store: S) -> Self {
        Builder {
            store,
            options: Options {
                on_in_progress: OnInProgress::Conflict,
                on_completed: OnCompleted::Replay,
                on_unknown: OnUnknown::Surface,
                lease: LeaseTiming::new(Duration::from_secs(30), Duration::from_secs(10)),
                retention: Duration::from_secs(24 * 60 * 60),
            },
            clock: Clock::default(),
        }
    }

    /// Another call holds the key (default: [`OnInProgress::Conflict`]).
    pub fn on_in_progress(mut self, policy: OnInProgress) -> Self {
        self.options.on_in_progress = policy;
        self
    }

    /// The key was completed (default: [`OnCompleted::Replay`]).
    pub fn on_completed(mut self, policy: OnCompleted) -> Self {
        self.options.on_completed = policy;
        self
    }

    /// A holder vanished (default: [`OnUnknown::Surface`]: never pay twice silently).
    pub fn on_unknown(mut self, policy: OnUnknown) -> Self {
        self.options.on_unknown = policy;
        self
    }

    /// How long a claim holds the key without renewal (default 30 s), and how often the
    /// running work renews it (default 10 s; kept at most half the lease, see
    /// [`LeaseTiming::new`]). The store judges expiry by its own time; the work is stopped
    /// (the call returns [`Error::Fenced`](super::Error::Fenced)) when its lease is lost.
    pub fn lease(mut self, lease: Duration, renew_every: Duration) -> Self {
        self.options.lease = LeaseTiming::new(lease, renew_every);
        self
    }

    /// How long finished records are kept, on the store's clock, before [`Once::purge`]
    /// removes them and the key can run again (default 24 h). Retryable failures are
    /// purgeable at once.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.options.retention = retention;
        self
    }

    /// The clock a waiter's deadline is measured on (default: [`Clock::Tokio`]). Leases and
    /// retention are never judged by it: the store's own time decides them.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The configured engine.
    pub fn build(self) -> Once<S> {
        Once::from_builder(self)
    }
}
