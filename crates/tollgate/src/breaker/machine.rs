//! The state machine behind the breaker's lock: plain data, no I/O, no atomics.
//!
//! Every method takes the current time from the caller; a transition is left in `change` for
//! the breaker to publish (atomic word, event, metrics) before it releases the lock, so events
//! are emitted in the order the transitions happened.

use std::time::Duration;

use tokio::time::Instant;

use super::config::BreakerConfig;
use super::events::Reason;
use super::state::EPOCH_MASK;
use super::window::{PlainCounts, Quiet, Sample, Totals, Window};
use super::{Outcome, State};
use crate::clock::Clock;

/// What a permit lets its holder do when the call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Closed or metrics-only: the outcome goes into the window.
    Windowed = 0,
    /// Half-open: the outcome is one of the trial results.
    Trial = 1,
    /// Disabled: nothing is recorded.
    Untracked = 2,
}

/// The current time, read from the clock at most once and only if some step needs it.
#[derive(Debug)]
pub(crate) struct Now<'a> {
    cached: Option<Instant>,
    clock: &'a Clock,
}

impl<'a> Now<'a> {
    pub(crate) fn new(cached: Option<Instant>, clock: &'a Clock) -> Self {
        Now { cached, clock }
    }

    pub(crate) fn get(&mut self) -> Instant {
        *self.cached.get_or_insert_with(|| self.clock.now())
    }
}

/// A transition waiting to be published.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Change {
    pub(crate) from: State,
    pub(crate) to: State,
    pub(crate) reason: Reason,
}

#[derive(Debug, Default)]
struct Trials {
    issued: u32,
    reported: u32,
    totals: Totals,
}

#[derive(Debug)]
pub(crate) struct Machine {
    pub(crate) state: State,
    pub(crate) epoch: u64,
    window: Window,
    /// The epoch at which the closed window was last emptied: the tag of its lock-free
    /// success counts ([`PlainCounts`]), still readable while the breaker is open.
    window_epoch: u64,
    open_until: Instant,
    half_open_since: Instant,
    trials: Trials,
    pub(crate) change: Option<Change>,
}

impl Machine {
    pub(crate) fn new(config: &BreakerConfig, now: Instant) -> Self {
        Machine {
            state: State::Closed,
            epoch: 0,
            window: Window::new(config.window, now),
            window_epoch: 0,
            open_until: now,
            half_open_since: now,
            trials: Trials::default(),
            change: None,
        }
    }

    pub(crate) fn transition(
        &mut self,
        to: State,
        reason: Reason,
        now: Instant,
        c: &BreakerConfig,
    ) {
        let from = self.state;
        self.state = to;
        self.epoch = (self.epoch + 1) & EPOCH_MASK;
        match to {
            State::Open => self.open_until = now + c.wait_in_open,
            State::HalfOpen => {
                self.half_open_since = now;
                self.trials = Trials::default();
            }
            State::Closed | State::MetricsOnly => {
                self.window.clear();
                self.window_epoch = self.epoch;
            }
            State::Disabled | State::ForcedOpen => {}
        }
        self.change = Some(Change { from, to, reason });
    }

    /// Decides whether a call may go ahead now; `Err` carries the retry-after hint.
    pub(crate) fn acquire(
        &mut self,
        now: Instant,
        c: &BreakerConfig,
    ) -> Result<Grant, Option<Duration>> {
        match self.state {
            State::Closed | State::MetricsOnly => Ok(Grant::Windowed),
            State::Disabled => Ok(Grant::Untracked),
            State::ForcedOpen => Err(None),
            State::Open if now >= self.open_until => {
                self.transition(State::HalfOpen, Reason::WaitElapsed, now, c);
                self.take_trial(c)
            }
            State::Open => Err(Some(self.open_until - now)),
            State::HalfOpen => {
                let stuck = c
                    .max_wait_in_half_open
                    .is_some_and(|max| now.saturating_duration_since(self.half_open_since) >= max);
                if stuck {
                    self.transition(State::Open, Reason::HalfOpenTimeout, now, c);
                    return Err(Some(c.wait_in_open));
                }
                self.take_trial(c)
            }
        }
    }

    fn take_trial(&mut self, c: &BreakerConfig) -> Result<Grant, Option<Duration>> {
        if self.trials.issued < c.permitted_calls_in_half_open {
            self.trials.issued += 1;
            Ok(Grant::Trial)
        } else {
            Err(None)
        }
    }

    /// Records call number `position` of a count window (its epoch was checked by the bump
    /// that numbered it, under this lock).
    pub(crate) fn record_counted(
        &mut self,
        position: u32,
        sample: Sample,
        now: &mut Now<'_>,
        c: &BreakerConfig,
    ) {
        if let Window::Count(window) = &mut self.window {
            let totals = window.record(position, sample);
            self.decide(totals, now, c);
        }
    }

    /// Re-evaluates a count window of `epoch` once `count` calls were made.
    pub(crate) fn evaluate_counted(
        &mut self,
        epoch: u64,
        count: u32,
        now: &mut Now<'_>,
        c: &BreakerConfig,
    ) {
        if epoch != self.epoch {
            return;
        }
        if let Window::Count(window) = &mut self.window {
            let totals = window.totals(count);
            self.decide(totals, now, c);
        }
    }

    /// Records a call of a time window permitted at `epoch` in the locked part of the window
    /// (`sample`), or only decides after a plain success was counted without the lock
    /// (`None`); outcomes of a window that is over are dropped. Then publishes, for the
    /// successes counted without the lock, whether one of them could open the breaker.
    pub(crate) fn record_timed(
        &mut self,
        epoch: u64,
        sample: Option<Sample>,
        now: &mut Now<'_>,
        c: &BreakerConfig,
        plain: Option<&PlainCounts>,
    ) {
        if epoch != self.epoch || !self.state.is_windowed() {
            return;
        }
        let Window::Time(window) = &mut self.window else {
            return;
        };
        let at = now.get();
        let locked = match sample {
            Some(sample) => window.record(sample, at),
            None => window.totals(at),
        };
        let Some(plain) = plain else {
            return self.decide(locked, now, c);
        };
        // Before the sum: a success racing it is either in the sum or decides itself.
        plain.unsettle();
        let totals = Self::with_plain(locked, Some(plain), self.window_epoch, at);
        self.decide(totals, now, c);
        plain.settle(self.quiet(totals, plain.bucket(at).index, c));
    }

    /// Whether one more plain success could open the breaker, given the window's `totals` in
    /// bucket `index`. A success adds a call and neither a failure nor a slow call, so it can
    /// reach a threshold only at the minimum number of calls; if even the fewest calls the
    /// window can hold after it (one more than now, at least the minimum) keep both rates
    /// below their thresholds, no success can until the next bucket, when calls leave.
    fn quiet(&self, totals: Totals, index: u64, c: &BreakerConfig) -> Quiet {
        if self.state != State::Closed || (totals.failures == 0 && totals.slow == 0) {
            return Quiet::Always;
        }
        let fewest = Totals {
            calls: totals
                .calls
                .saturating_add(1)
                .max(c.effective_minimum_calls()),
            ..totals
        };
        if fewest.reaches(totals.failures, c.failure_rate_threshold)
            || fewest.reaches(totals.slow, c.slow_call_rate_threshold)
        {
            Quiet::Never
        } else {
            Quiet::In(index)
        }
    }

    /// The locked part's totals plus the plain successes counted without the lock.
    fn with_plain(
        locked: Totals,
        plain: Option<&PlainCounts>,
        window_epoch: u64,
        now: Instant,
    ) -> Totals {
        let Some(plain) = plain else {
            return locked;
        };
        Totals {
            calls: locked.calls.saturating_add(plain.sum(window_epoch, now)),
            ..locked
        }
    }

    /// Opens a closed breaker whose window reached a threshold.
    fn decide(&mut self, totals: Totals, now: &mut Now<'_>, c: &BreakerConfig) {
        if self.state != State::Closed || totals.calls < c.effective_minimum_calls() {
            return;
        }
        let reason = if totals.reaches(totals.failures, c.failure_rate_threshold) {
            Reason::FailureRate(totals.failure_rate())
        } else if totals.reaches(totals.slow, c.slow_call_rate_threshold) {
            Reason::SlowCallRate(totals.slow_rate())
        } else {
            return;
        };
        self.transition(State::Open, reason, now.get(), c);
    }

    /// Records the outcome of a half-open trial permitted at `epoch`.
    pub(crate) fn record_trial(
        &mut self,
        epoch: u64,
        outcome: Outcome,
        slow: bool,
        now: &mut Now<'_>,
        c: &BreakerConfig,
    ) {
        if epoch != self.epoch || self.state != State::HalfOpen {
            return;
        }
        if outcome == Outcome::Ignored {
            self.trials.issued -= 1;
            return;
        }
        self.trials.reported += 1;
        let t = &mut self.trials.totals;
        t.calls += 1;
        t.failures += u32::from(outcome == Outcome::Failure);
        t.slow += u32::from(slow);
        if self.trials.reported < c.permitted_calls_in_half_open {
            return;
        }
        let totals = self.trials.totals;
        let now = now.get();
        if totals.reaches(totals.failures, c.failure_rate_threshold) {
            self.transition(
                State::Open,
                Reason::TrialsFailed(totals.failure_rate()),
                now,
                c,
            );
        } else if totals.reaches(totals.slow, c.slow_call_rate_threshold) {
            self.transition(
                State::Open,
                Reason::TrialsFailed(totals.slow_rate()),
                now,
                c,
            );
        } else {
            self.transition(State::Closed, Reason::TrialsPassed, now, c);
        }
    }

    /// A trial permit was dropped without an outcome: its slot goes back, nothing is counted.
    pub(crate) fn release_trial(&mut self, epoch: u64) {
        if epoch == self.epoch && self.state == State::HalfOpen {
            self.trials.issued -= 1;
        }
    }

    /// The closed window's totals once `count` calls were made, as of `now`.
    pub(crate) fn totals(
        &mut self,
        count: u32,
        now: Instant,
        plain: Option<&PlainCounts>,
    ) -> Totals {
        match &mut self.window {
            Window::Count(window) => window.totals(count),
            Window::Time(window) => {
                let head = window.head();
                let locked = window.totals(now);
                if let Some(plain) = plain
                    && window.head() != head
                {
                    // Buckets left the locked part: a success still counting in the bucket the
                    // last decision found quiet must decide again on what is left.
                    plain.unsettle();
                }
                Self::with_plain(locked, plain, self.window_epoch, now)
            }
        }
    }
}
