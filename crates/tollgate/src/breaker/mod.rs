//! Circuit breaker: stop calling a dependency that is failing, and find out when it is back.
//!
//! A [`Breaker`] is **closed** while calls succeed. Once its sliding window (the last N calls, or
//! the calls of the last T) holds at least `minimum_calls`, a failure rate or slow-call rate at
//! or above its threshold **opens** it: calls are rejected with [`NotPermitted`] (carrying a
//! retry-after hint) without reaching the dependency. After `wait_in_open` the next call moves
//! it to **half-open** — decided by that call, no timer thread — where exactly
//! `permitted_calls_in_half_open` trial calls go through; their results close it or open it
//! again. Manual states: disabled, forced open, metrics only; [`Breaker::reset`] closes it.
//!
//! # Guarantees under concurrency and cancellation
//! - Half-open admits **exactly** the configured number of trial calls, however many tasks call
//!   at once: trial slots are counted under the breaker's lock.
//! - A [`Permit`] (or an [`OwnedPermit`], which can be moved into a task) is a guard. A call
//!   whose future is dropped before it reports counts nothing,
//!   and a trial slot it held is given back, so a cancelled trial cannot wedge half-open;
//!   `max_wait_in_half_open` bounds the stay in half-open when trials hang.
//! - An outcome is counted only in the state it was permitted in: every transition bumps an
//!   epoch, and a call that started before the breaker opened cannot count as a trial.
//! - Outcomes are classified by a typed [`Classifier`] over the call's `Result`, never by
//!   matching error text.
//! - The closed-state hot path takes no lock and allocates nothing: one atomic load to permit
//!   a call, and one compare-and-swap to record a success that was neither a failure nor slow
//!   (on the breaker's word in a count window, on its bucket's word in a time window). A count
//!   window reads no clock unless slow-call detection needs it; a time window reads it once.
//!   Failures, slow calls, trials and the other states take the lock, and so does a success
//!   that could open the breaker: the one that brings a count window to its minimum number of
//!   calls; in a time window that holds a failure or a slow call, the first success of each
//!   bucket (calls left the window with the last one) and, below the minimum number of
//!   calls, successes while enough failures or slow calls are in to open it at the minimum.
//!
//! Transitions are published in order as [`BreakerEvent`]s ([`Breaker::subscribe`]), tracing
//! events and metrics (see [`events`]). [`Registry`] hands out one breaker per name.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use tollgate::breaker::{Breaker, BreakerConfig, CallError, SlidingWindow, State};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let config = BreakerConfig::default()
//!     .window(SlidingWindow::Count(4))
//!     .minimum_calls(4)
//!     .failure_rate_threshold(50.0)
//!     .wait_in_open(Duration::from_secs(30));
//! let breaker = Breaker::new("llm", config).unwrap();
//!
//! for _ in 0..4 {
//!     let _ = breaker.call(async { Err::<(), _>("upstream 503") }).await;
//! }
//! assert_eq!(breaker.state(), State::Open);
//! match breaker.call(async { Ok::<_, &str>(42) }).await {
//!     Err(CallError::Rejected(rejected)) => assert!(rejected.retry_after().is_some()),
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//! # }
//! ```

mod call;
mod classify;
mod config;
mod error;
pub mod events;
mod machine;
mod permit;
mod registry;
mod state;
mod window;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

pub use call::BreakerCall;
pub use classify::{BreakerOutcome, ByErrorKind, Classifier, ErrIsFailure, Outcome};
pub use config::BreakerConfig;
pub use error::{CallError, ConfigError, NotPermitted};
pub use events::{BreakerEvent, Reason};
pub use permit::{OwnedPermit, Permit, PermitGuard};
pub use registry::{Registry, RegistryBuilder, RegistryEvent};
pub use state::State;
pub use window::{SlidingWindow, Totals};

use crate::clock::Clock;
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};
use machine::{Grant, Machine, Now};
use permit::Ticket;
use state::Word;
use window::{Added, PURGE_EVERY, PlainCounts, Sample};

const EVENT_CAPACITY: usize = 64;

/// A circuit breaker. Share it behind an `Arc` (or get it from a [`Registry`]).
pub struct Breaker {
    name: Arc<str>,
    config: BreakerConfig,
    clock: Clock,
    /// Where the start of a timed call is measured from (see `Ticket`).
    origin: Instant,
    word: AtomicU64,
    /// A time window's plain successes, counted without the lock (`None` for a count window).
    plain: Option<PlainCounts>,
    machine: Mutex<Machine>,
    events: broadcast::Sender<BreakerEvent>,
    metrics: events::Metrics,
}

impl Breaker {
    /// A closed breaker named `name` (the name labels its events and metrics).
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Result<Self, ConfigError> {
        Self::with_clock(name, config, Clock::default())
    }

    /// A closed breaker reading time from `clock`.
    pub fn with_clock(
        name: impl Into<Arc<str>>,
        config: BreakerConfig,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let name = name.into();
        let origin = clock.now();
        let machine = Machine::new(&config, origin);
        Ok(Breaker {
            plain: PlainCounts::new(config.window, origin),
            origin,
            metrics: events::Metrics::new(&name),
            events: broadcast::channel(EVENT_CAPACITY).0,
            word: AtomicU64::new(Word::new(State::Closed, 0).0),
            machine: Mutex::new(machine),
            name,
            config,
            clock,
        })
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The breaker's settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        Word(self.word.load(Ordering::Acquire)).state()
    }

    /// The closed-state window's counts as of now.
    pub fn totals(&self) -> Totals {
        let now = self.clock.now();
        let mut machine = self.lock();
        let count = Word(self.word.load(Ordering::Acquire)).count();
        machine.totals(count, now, self.plain.as_ref())
    }

    /// Receives every state transition from now on. A receiver that falls more than 64 events
    /// behind loses the oldest ones (see [`broadcast`]).
    pub fn subscribe(&self) -> broadcast::Receiver<BreakerEvent> {
        self.events.subscribe()
    }

    /// Asks to make one call. `Err` means the call must not be made.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, NotPermitted> {
        self.grant().map(|ticket| PermitGuard::new(self, ticket))
    }

    /// Like [`try_acquire`](Self::try_acquire), but the permit holds an `Arc` of the breaker, so
    /// it can be moved into a spawned task or stored in a `'static` future.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tollgate::breaker::{Breaker, BreakerConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let breaker = Arc::new(Breaker::new("db", BreakerConfig::default()).unwrap());
    /// let permit = breaker.try_acquire_owned().unwrap();
    /// tokio::spawn(async move { permit.success() }).await.unwrap();
    /// assert_eq!(breaker.totals().calls, 1);
    /// # }
    /// ```
    #[inline]
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, NotPermitted> {
        PermitGuard::try_acquire(self)
    }

    /// Decides whether one call may go ahead: the lock-free fast path for the free-flowing
    /// states, the machine otherwise.
    #[inline]
    pub(crate) fn grant(&self) -> Result<Ticket, NotPermitted> {
        let word = Word(self.word.load(Ordering::Acquire));
        let state = word.state();
        if !state.is_free_flowing() {
            return self.acquire_slow();
        }
        let grant = if state == State::Disabled {
            Grant::Untracked
        } else {
            Grant::Windowed
        };
        Ok(self.ticket(grant, word.epoch(), None))
    }

    fn acquire_slow(&self) -> Result<Ticket, NotPermitted> {
        let now = self.clock.now();
        let mut machine = self.lock();
        let granted = machine.acquire(now, &self.config);
        let (state, epoch) = (machine.state, machine.epoch);
        self.publish(&mut machine);
        drop(machine);
        match granted {
            Ok(grant) => Ok(self.ticket(grant, epoch, Some(now))),
            Err(retry_after) => {
                self.metrics.not_permitted();
                Err(NotPermitted::new(self.name.clone(), state, retry_after))
            }
        }
    }

    #[inline]
    fn ticket(&self, grant: Grant, epoch: u64, now: Option<Instant>) -> Ticket {
        let timed = self.config.slow_call_duration.is_some() && grant != Grant::Untracked;
        let started =
            timed.then(|| self.nanos_since_origin(now.unwrap_or_else(|| self.clock.now())));
        Ticket::new(grant, epoch, started)
    }

    /// `now` as nanoseconds since the breaker was built (the clock never goes back before it).
    #[inline]
    pub(crate) fn nanos_since_origin(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    /// Runs `call` if permitted, classifying `Err` as a failure.
    ///
    /// The permit is asked for when the returned future is first polled. If that future is
    /// dropped while `call` runs, nothing is counted.
    pub fn call<F>(&self, call: F) -> BreakerCall<'_, F, ErrIsFailure> {
        BreakerCall::new(self, call, ErrIsFailure)
    }

    /// Runs `call` if permitted, classifying its result with `classifier`.
    ///
    /// If the returned future is dropped while `call` runs, nothing is counted.
    pub fn call_classified<F, C>(&self, call: F, classifier: C) -> BreakerCall<'_, F, C> {
        BreakerCall::new(self, call, classifier)
    }

    /// Closes the breaker and empties its window.
    pub fn reset(&self) {
        self.set(State::Closed);
    }

    /// Lets every call through and records nothing, until [`reset`](Self::reset).
    pub fn disable(&self) {
        self.set(State::Disabled);
    }

    /// Rejects every call, until [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.set(State::ForcedOpen);
    }

    /// Lets every call through and records it, but never changes state by itself.
    pub fn metrics_only(&self) {
        self.set(State::MetricsOnly);
    }

    fn set(&self, to: State) {
        let now = self.clock.now();
        let mut machine = self.lock();
        machine.transition(to, Reason::Manual, now, &self.config);
        self.publish(&mut machine);
    }

    #[inline]
    pub(crate) fn record(
        &self,
        grant: Grant,
        epoch: u64,
        outcome: Outcome,
        elapsed: Option<Duration>,
        now: Option<Instant>,
    ) {
        if grant == Grant::Untracked {
            return;
        }
        let slow = matches!((self.config.slow_call_duration, elapsed), (Some(limit), Some(e)) if e >= limit);
        self.metrics.call(outcome, slow);
        let mut now = Now::new(now, &self.clock);
        if grant == Grant::Trial {
            let mut machine = self.lock();
            machine.record_trial(epoch, outcome, slow, &mut now, &self.config);
            return self.publish(&mut machine);
        }
        if outcome == Outcome::Ignored {
            return;
        }
        let sample = Sample::new(outcome == Outcome::Failure, slow);
        if !self.config.is_count_window() {
            return self.record_timed(epoch, sample, &mut now);
        }
        if sample.is_plain_success() {
            return self.count_success(epoch, &mut now);
        }
        let mut machine = self.lock();
        if let Some(position) = self.bump(epoch) {
            machine.record_counted(position, sample, &mut now, &self.config);
            self.publish(&mut machine);
        }
    }

    /// Records an untimed success of a windowed grant: what [`record`](Self::record) does for
    /// it, in the same order, without its tests for the rarer grants and outcomes. Inlined into
    /// the caller's future for a count window; a time window's path is out of line
    /// ([`record_timed`](Self::record_timed): it reads the clock, which costs more than the
    /// call).
    #[inline]
    pub(crate) fn plain_success(&self, epoch: u64) {
        self.metrics.call(Outcome::Success, false);
        let mut now = Now::new(None, &self.clock);
        if self.config.is_count_window() {
            self.count_success(epoch, &mut now);
        } else {
            self.record_timed(epoch, Sample::new(false, false), &mut now);
        }
    }

    /// The hot path: a plain success in a count window is one compare-and-swap. The lock is
    /// taken only when this call completes the minimum number of calls (a decision is due)
    /// or the counter needs its periodic purge.
    #[inline]
    fn count_success(&self, epoch: u64, now: &mut Now<'_>) {
        let Some(count) = self.bump(epoch) else {
            return;
        };
        if count != self.config.effective_minimum_calls() && count % PURGE_EVERY != 0 {
            return;
        }
        self.evaluate_count(epoch, now);
    }

    /// A decision (or the counter's purge) is due after a success in a count window: under the
    /// lock, out of line so that [`count_success`](Self::count_success) stays small.
    #[inline(never)]
    fn evaluate_count(&self, epoch: u64, now: &mut Now<'_>) {
        let mut machine = self.lock();
        let count = Word(self.word.load(Ordering::Acquire)).count();
        machine.evaluate_counted(epoch, count, now, &self.config);
        self.publish(&mut machine);
    }

    /// Records an outcome of a time window. Kept out of line, so that the count window's path
    /// stays small enough to be inlined into the caller's future.
    #[inline(never)]
    fn record_timed(&self, epoch: u64, sample: Sample, now: &mut Now<'_>) {
        if sample.is_plain_success() && self.timed_success(epoch, now) {
            return;
        }
        let mut machine = self.lock();
        machine.record_timed(epoch, Some(sample), now, &self.config, self.plain.as_ref());
        self.publish(&mut machine);
    }

    /// A plain success of a time window: one compare-and-swap on its bucket's word, and the
    /// lock only if the last decision found that a success of this bucket could open the
    /// breaker ([`Quiet`](window::Quiet)). `false`: record it under the lock.
    #[inline]
    fn timed_success(&self, epoch: u64, now: &mut Now<'_>) -> bool {
        let Some(plain) = &self.plain else {
            return false;
        };
        let current = || {
            let word = Word(self.word.load(Ordering::Acquire));
            word.epoch() == epoch && word.state().is_windowed()
        };
        if !current() {
            return true; // permitted in a state that is over: counted nowhere
        }
        let bucket = plain.bucket(now.get());
        match plain.add(epoch, bucket, current) {
            Added::Dropped => true,
            Added::Full => false,
            Added::Counted if plain.is_quiet(bucket.index) => true,
            Added::Counted => {
                let mut machine = self.lock();
                machine.record_timed(epoch, None, now, &self.config, Some(plain));
                self.publish(&mut machine);
                true
            }
        }
    }

    /// Numbers one call of the windowed state of `epoch`; `None` if that state is over.
    #[inline]
    fn bump(&self, epoch: u64) -> Option<u32> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let word = Word(current);
            if word.epoch() != epoch || !word.state().is_windowed() {
                return None;
            }
            let next = word.bumped();
            match self.word.compare_exchange_weak(
                current,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(next.count()),
                Err(actual) => current = actual,
            }
        }
    }

    pub(crate) fn release_trial(&self, epoch: u64) {
        self.lock().release_trial(epoch);
    }

    /// Publishes a pending transition while the lock is still held, so that the atomic word and
    /// the event stream see transitions in the order they happened.
    fn publish(&self, machine: &mut MutexGuard<'_, Machine>) {
        let Some(change) = machine.change.take() else {
            return;
        };
        // Entering a windowed state starts a fresh window (the machine cleared its part); any
        // other state keeps the count, so the window that opened the breaker stays readable.
        // A read-modify-write, not a store: a lock-free bump racing this transition is either
        // ordered before it (and kept) or fails and sees the new epoch.
        let word = Word::new(machine.state, machine.epoch);
        let keep_count = !machine.state.is_windowed();
        if !keep_count && let Some(plain) = &self.plain {
            // Emptied before the new epoch is published: a word of an earlier window could
            // otherwise be read again by the window 256 epochs later (its tag is the epoch's
            // low byte), e.g. a breaker flapping between open and half-open within one window.
            plain.clear();
        }
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                let count = if keep_count { Word(current).count() } else { 0 };
                Some(word.with_count(count).0)
            });
        let event = BreakerEvent {
            breaker: self.name.clone(),
            from: change.from,
            to: change.to,
            reason: change.reason,
        };
        self.metrics.transition(&event);
        // No subscriber is not an error: events are best-effort notifications.
        let _ = self.events.send(event);
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // The machine is never left half-updated by a panic (no user code runs under the lock),
        // so a poisoned lock is safe to keep using.
        self.machine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn timed(clock: &ManualClock) -> Breaker {
        let config = BreakerConfig::default()
            .window(SlidingWindow::Time {
                length: Duration::from_secs(10),
                buckets: 10,
            })
            .minimum_calls(4)
            .failure_rate_threshold(50.0);
        Breaker::with_clock("quiet", config, Clock::from(clock.clone())).unwrap()
    }

    /// Whether a plain success counted at `at` skips the lock.
    fn skips_the_lock(b: &Breaker, at: Instant) -> bool {
        let plain = b.plain.as_ref().unwrap();
        plain.is_quiet(plain.bucket(at).index)
    }

    #[test]
    fn a_time_window_success_skips_the_lock_unless_it_could_open_the_breaker() {
        let clock = ManualClock::new();
        let b = timed(&clock);
        assert!(skips_the_lock(&b, clock.now()), "no failure in the window");
        b.try_acquire().unwrap().failure();
        assert!(
            skips_the_lock(&b, clock.now()),
            "1 failure: at the minimum of 4 calls, 25 %"
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            !skips_the_lock(&b, clock.now()),
            "a new bucket: the first success decides"
        );
        b.try_acquire().unwrap().success();
        assert!(skips_the_lock(&b, clock.now()), "decided: 1 of 2, quiet");
        b.try_acquire().unwrap().failure();
        assert!(
            !skips_the_lock(&b, clock.now()),
            "2 failures: the success that makes 4 calls opens it at 50 %"
        );
        assert_eq!(b.state(), State::Closed, "3 calls");
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), State::Open, "2 of 4");
        assert!(
            skips_the_lock(&b, clock.now()),
            "not closed: nothing to decide"
        );
    }

    #[test]
    fn reading_the_totals_after_buckets_left_makes_the_next_success_decide() {
        let clock = ManualClock::new();
        let b = timed(&clock);
        b.try_acquire().unwrap().failure();
        let before = clock.now();
        assert!(skips_the_lock(&b, before));
        clock.advance(Duration::from_secs(1));
        let _ = b.totals();
        assert!(
            !skips_the_lock(&b, before),
            "a success whose clock read was in the quiet bucket decides on what is left"
        );
    }
}
