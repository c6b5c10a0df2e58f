//! Building a [`Flight`]: abort policy, result cache and clock.

use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use super::Flight;
use crate::clock::Clock;

/// How long a finished execution's result is served to later callers without running again.
///
/// Successes and failures have separate lifetimes, so a failure can be cached for less time
/// than a success (or not at all). Panics and aborts are never cached. The default caches
/// nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// How long an `Ok` result is reused; `None` does not cache successes.
    pub success_ttl: Option<Duration>,
    /// How long an `Err` result is reused; `None` does not cache failures.
    pub failure_ttl: Option<Duration>,
}

impl CachePolicy {
    /// Caches successes for `success_ttl` and failures not at all.
    pub fn successes_for(success_ttl: Duration) -> Self {
        CachePolicy {
            success_ttl: Some(success_ttl),
            failure_ttl: None,
        }
    }

    /// Also caches failures, for `failure_ttl`.
    #[must_use]
    pub fn failures_for(mut self, failure_ttl: Duration) -> Self {
        self.failure_ttl = Some(failure_ttl);
        self
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.success_ttl.is_some() || self.failure_ttl.is_some()
    }
}

/// Carries the flight's type parameters without owning values of them.
type Types<K, T, E> = fn() -> (K, T, E);

/// Configures a [`Flight`]; obtained from [`Flight::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<K, T, E> {
    pub(crate) abort_when_unused: bool,
    pub(crate) always_in_task: bool,
    pub(crate) cache: CachePolicy,
    pub(crate) clock: Clock,
    _types: PhantomData<Types<K, T, E>>,
}

impl<K, T, E> Builder<K, T, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    pub(crate) fn new() -> Self {
        Builder {
            abort_when_unused: false,
            always_in_task: false,
            cache: CachePolicy::default(),
            clock: Clock::default(),
            _types: PhantomData,
        }
    }

    /// Aborts an execution once every caller waiting for it has been dropped (default: off,
    /// the work runs to completion, so a result that was paid for is not thrown away).
    pub fn abort_when_unused(mut self, abort: bool) -> Self {
        self.abort_when_unused = abort;
        self
    }

    /// Runs every execution in a task of its own from the start (default: off — a leader
    /// nobody joins runs the work in its own future, and the work moves into a task when a
    /// second caller joins or the leader is dropped). Turn it on for work that must make
    /// progress even while its leader is not polled: work that renews a lease, for one (a
    /// leader parked in a buffered stream would otherwise let the lease run out). Outside a
    /// tokio runtime the work still runs in its leader.
    pub fn always_in_task(mut self, in_task: bool) -> Self {
        self.always_in_task = in_task;
        self
    }

    /// Serves finished results to later callers for a while (default: no cache).
    pub fn cache(mut self, policy: CachePolicy) -> Self {
        self.cache = policy;
        self
    }

    /// The clock the result cache reads (default: [`Clock::Tokio`]).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The configured flight.
    pub fn build(self) -> Flight<K, T, E> {
        Flight::from_builder(self)
    }
}
