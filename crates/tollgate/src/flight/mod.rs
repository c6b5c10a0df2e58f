//! Per-key coalescing (single-flight): concurrent callers of one key share one execution.
//!
//! [`Flight::run`] takes a key and a closure that builds the work. The first caller of a key
//! (the *leader*) starts the work; every caller that arrives while it runs (a *joiner*) waits for
//! the same execution, and all of them receive a clone of its result — errors included. The
//! [`Outcome`] says which [`Role`] each caller played. [`Flight::enter`] does the same but takes
//! the caller's turn at once rather than at the first poll, and returns a named future
//! ([`Turn`]) for callers that must store it, such as a tower service's response future.
//!
//! # Guarantees under concurrency
//! - **One execution per key at a time**, however many callers race: the closure of a joiner is
//!   never called.
//! - **Errors are shared, not retried**: a failure reaches every caller of that execution; the
//!   next caller after it finished starts a fresh execution.
//! - **No entry outlives its execution**: the entry of a key is removed by the execution itself,
//!   before its result is published, so [`Flight::len`] is 0 whenever nothing is running.
//! - **Distinct keys never wait on each other**: the per-key map is sharded and its locks are
//!   held only for a map operation, never while work runs.
//!
//! # Cancellation and panics
//! - The work is **owned by no caller**. A leader nobody joins runs it inside its own future
//!   (no task is spawned for one caller); the work moves into a tokio task of its own as soon
//!   as a second caller joins or the leader's future is dropped. Dropping the leader's future
//!   therefore does not cancel it: joiners still get its result and nobody pays for a second
//!   execution. And no caller waits on another caller being polled: a leader parked unpolled
//!   (in a `select!` branch not taken, a buffered stream) never stalls its joiners. The task
//!   goes to the leader's runtime, whichever caller moves it (a runtime that is no longer
//!   driven — a `block_on` that returned — leaves it waiting there; one that has shut down
//!   aborts it, and its callers get [`Error::Aborted`]). The work runs in the leader's tracing
//!   span in both places; while it runs inline it also sees the leader's task-locals, and a
//!   lone leader parked unpolled pauses it: work that must go on regardless (it renews a
//!   lease, say) asks for [`Builder::always_in_task`].
//! - With [`Builder::abort_when_unused`], the work is aborted once *every* caller has been
//!   dropped; a caller arriving after that starts a new execution rather than joining a dead one.
//! - A panic in the work, in the closure that builds it, or in the leader's look in the result
//!   cache (the key's `Hash`, the clock) reaches every caller as [`Error::Panicked`], and the
//!   key is usable again at once
//!   (`tests/flight_cache.rs::a_panic_while_the_leader_looks_in_the_cache_reaches_its_callers_and_frees_the_key`).
//!
//! An optional short-lived result cache ([`CachePolicy`]) serves a finished result again for a
//! per-outcome TTL, so a failure can be cached for less time than a success.
//!
//! `run` belongs inside a tokio runtime, which runs the work once it leaves its leader. Outside
//! one, a lone leader still runs its work, joiners wait for that leader, and work whose leader
//! is dropped is aborted.
//!
//! # Concurrent calls on the same key
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use tollgate::flight::{Flight, Role};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let flight: Flight<String, u64, String> = Flight::new();
//! let api_calls = Arc::new(AtomicUsize::new(0));
//! let paid_call = || {
//!     let api_calls = Arc::clone(&api_calls);
//!     async move {
//!         api_calls.fetch_add(1, Ordering::SeqCst);
//!         tokio::task::yield_now().await; // the paid call takes a while
//!         Ok::<_, String>(42)
//!     }
//! };
//! let key = "user-1/2026-11-21".to_string();
//! // `join!` polls the leader first: it starts the work, which is still running when the
//! // second caller arrives and joins it. (Work that finishes within its leader's first poll
//! // has nothing to share: a caller after it leads a new execution.)
//! let (a, b) = tokio::join!(
//!     flight.run(key.clone(), paid_call),
//!     flight.run(key.clone(), paid_call),
//! );
//! assert_eq!((a.result, b.result), (Ok(42), Ok(42)));
//! assert_eq!((a.role, b.role), (Role::Leader, Role::Joiner));
//! assert_eq!(api_calls.load(Ordering::SeqCst), 1);
//! assert_eq!(flight.len(), 0); // nothing running, nothing left behind
//! # }
//! ```

mod cache;
mod config;
mod error;
mod task;
mod turn;

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

pub use config::{Builder, CachePolicy};
pub use error::{Error, Outcome, Role};
pub use turn::Turn;

use crate::sync::slots::SlotMap;
use cache::ResultCache;
pub(crate) use error::panic_message;
use task::{Call, Shared};

/// Coalesces concurrent executions per key. Cheap to clone: clones share the same calls.
pub struct Flight<K, T, E> {
    inner: Arc<Inner<K, T, E>>,
}

pub(crate) struct Inner<K, T, E> {
    calls: SlotMap<K, Call<K, T, E>>,
    cache: Option<ResultCache<K, T, E>>,
    abort_when_unused: bool,
    always_in_task: bool,
}

impl<K, T, E> Flight<K, T, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// A flight that lets work finish even when every caller has gone, with no result cache.
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// Configures a flight (abort policy, result cache, clock).
    pub fn builder() -> Builder<K, T, E> {
        Builder::new()
    }

    pub(crate) fn from_builder(builder: Builder<K, T, E>) -> Self {
        let cache = builder
            .cache
            .is_enabled()
            .then(|| ResultCache::new(builder.cache, builder.clock));
        Flight {
            inner: Arc::new(Inner {
                calls: SlotMap::new(),
                cache,
                abort_when_unused: builder.abort_when_unused,
                always_in_task: builder.always_in_task,
            }),
        }
    }

    /// Runs `make()`'s future once for all concurrent callers of `key` and returns its shared
    /// result. `make` is called only when this caller leads.
    ///
    /// Dropping the returned future does not cancel the work (unless
    /// [`Builder::abort_when_unused`] is set and this was the last caller).
    pub async fn run<F, Fut>(&self, key: K, make: F) -> Outcome<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.enter(key, make).await
    }

    /// Takes this caller's turn at `key` now — leading (`make()`'s future becomes the work) or
    /// joining — and returns a named future of the shared result.
    ///
    /// [`run`](Self::run) does the same at its first poll. Here the turn is taken at once, for
    /// callers that cannot await, such as a tower service's `call`: dropping the returned
    /// [`Turn`] unpolled is a caller leaving, so work it started goes on for the others (or
    /// alone: it is not tied to its leader), unless [`Builder::abort_when_unused`] is set and
    /// nobody else waits.
    ///
    /// ```
    /// use tollgate::flight::{Flight, Role};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let flight: Flight<&str, u32, ()> = Flight::new();
    /// let first = flight.enter("report", || async { Ok(42) });
    /// let second = flight.enter("report", || async { Ok(0) }); // joins: never made
    /// let (a, b) = (first.await, second.await);
    /// assert_eq!((a.result, a.role), (Ok(42), Role::Leader));
    /// assert_eq!((b.result, b.role), (Ok(42), Role::Joiner));
    /// # }
    /// ```
    pub fn enter<F, Fut>(&self, key: K, make: F) -> Turn<K, T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        if let Some(result) = self.cached(&key) {
            return Turn::done(result, Role::Cached);
        }
        let caches = self.inner.cache.is_some();
        let (call, created) = self.inner.calls.acquire_with(key, |key, hash| {
            Call::new(hash, caches.then(|| key.clone()))
        });
        let role = if created {
            self.lead(&call, make)
        } else {
            tracing::trace!("flight: joined");
            call.hand_to_task();
            Role::Joiner
        };
        let caller = Caller {
            call,
            leads: role == Role::Leader,
            abandons: self
                .inner
                .abort_when_unused
                .then(|| Arc::clone(&self.inner)),
        };
        Turn::taken(caller, role)
    }

    /// Starts the execution of a call this caller created.
    fn lead<F, Fut>(&self, call: &Arc<Call<K, T, E>>, make: F) -> Role
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        // Everything here can run user code (the key's hash and the clock through the cache,
        // `make`): a panic is published to the call's callers, never leaves its entry without
        // work for them to wait on.
        let started = catch_unwind(AssertUnwindSafe(|| {
            // A result may have been cached between our cache miss and our entry creation.
            let cached = call.cache_key().and_then(|key| self.cached(key));
            if cached.is_none() {
                task::start(&self.inner, call, make);
            }
            cached
        }));
        match started {
            Ok(Some(result)) => {
                task::complete(&self.inner, call, result, false, false);
                Role::Cached
            }
            Ok(None) => {
                tracing::trace!("flight: led");
                call.started(self.inner.always_in_task);
                Role::Leader
            }
            Err(payload) => {
                let error = Error::Panicked(panic_message(payload.as_ref()));
                task::complete(&self.inner, call, Err(error), true, false);
                Role::Leader
            }
        }
    }

    fn cached(&self, key: &K) -> Option<Shared<T, E>> {
        self.inner.cache.as_ref()?.get(key)
    }

    /// Number of executions running now (0 when idle: no entry outlives its execution).
    pub fn len(&self) -> usize {
        self.inner.calls.len()
    }

    /// `true` when no execution is running.
    pub fn is_empty(&self) -> bool {
        self.inner.calls.is_empty()
    }

    /// Drops expired cached results and returns how many fresh ones remain (0 without a cache).
    pub fn purge_expired(&self) -> usize {
        self.inner
            .cache
            .as_ref()
            .map_or(0, ResultCache::purge_expired)
    }
}

/// One caller's share of a call, held by its [`Turn`] until the caller has the result.
struct Caller<K: Hash + Eq, T, E> {
    call: Arc<Call<K, T, E>>,
    /// This caller started the work and may still be running it in its own future.
    leads: bool,
    /// The flight, when it aborts unused work: the last caller to go then removes the entry.
    /// (Otherwise a caller needs nothing of it, and does not pay for holding it.)
    abandons: Option<Arc<Inner<K, T, E>>>,
}

impl<K: Hash + Eq, T, E> Caller<K, T, E> {
    /// The caller goes before the result is out. The leader's going moves its inline work into
    /// a task; with `abort_when_unused`, the last caller to go aborts the work instead. (Once
    /// the result is out there is nothing to do: the entry is gone and the work finished.)
    fn leave(self) {
        // `release` removes the entry under the shard lock when the count reaches zero, so no
        // new caller can join the call we are about to abort.
        let abandon = self
            .abandons
            .as_ref()
            .is_some_and(|inner| inner.calls.release_hashed(self.call.hash(), &self.call));
        if self.leads || abandon {
            self.call.leave(abandon);
        }
    }
}

impl<K, T, E> Default for Flight<K, T, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, T, E> Clone for Flight<K, T, E> {
    fn clone(&self) -> Self {
        Flight {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Hash + Eq, T, E> fmt::Debug for Flight<K, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flight")
            .field("in_flight", &self.inner.calls.len())
            .field("caches", &self.inner.cache.is_some())
            .field("abort_when_unused", &self.inner.abort_when_unused)
            .field("always_in_task", &self.inner.always_in_task)
            .finish()
    }
}
