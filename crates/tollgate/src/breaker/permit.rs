//! The permit: a guard for one call let through by the breaker.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::Breaker;
use super::classify::Outcome;
use super::machine::Grant;

/// Permission for one call. Report how the call went with [`record`](Self::record) (or
/// [`success`](Self::success) / [`failure`](Self::failure)).
///
/// Dropping a permit without recording — the call's future was cancelled — counts nothing; a
/// half-open trial slot it held is given back for another caller.
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct Permit<'a> {
    pub(crate) breaker: &'a Breaker,
    pub(crate) grant: Grant,
    pub(crate) epoch: u64,
    pub(crate) started: Option<Instant>,
    pub(crate) settled: bool,
}

impl Permit<'_> {
    /// Records the call's outcome. With slow-call detection on, the call's duration is measured
    /// from the moment the permit was granted.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.settled = true;
        let now = self.started.map(|_| self.breaker.clock.now());
        let elapsed = match (self.started, now) {
            (Some(start), Some(now)) => Some(now.saturating_duration_since(start)),
            _ => None,
        };
        self.breaker
            .record(self.grant, self.epoch, outcome, elapsed, now);
    }

    /// Records the call's outcome with a duration the caller measured itself.
    pub fn record_elapsed(mut self, outcome: Outcome, elapsed: Duration) {
        self.settled = true;
        self.breaker
            .record(self.grant, self.epoch, outcome, Some(elapsed), None);
    }

    /// Records a success.
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// Records a failure.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records nothing, on purpose: same as dropping the permit.
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Whether this permit is one of the half-open trial calls.
    pub fn is_trial(&self) -> bool {
        self.grant == Grant::Trial
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.settled && self.grant == Grant::Trial {
            self.breaker.release_trial(self.epoch);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("grant", &self.grant)
            .field("epoch", &self.epoch)
            .finish()
    }
}
