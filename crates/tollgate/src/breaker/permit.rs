//! The permit: a guard for one call let through by the breaker, borrowed or owned.
//!
//! [`Permit`] borrows its breaker (the fastest: no reference count is touched);
//! [`OwnedPermit`] holds an `Arc` of it, so it can be moved into a spawned task or kept in a
//! named future. Both are the one [`PermitGuard`] and behave the same.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Breaker;
use super::classify::Outcome;
use super::machine::Grant;

/// A permit that borrows its breaker: what [`Breaker::try_acquire`] returns.
pub type Permit<'a> = PermitGuard<&'a Breaker>;

/// A permit that owns an `Arc` of its breaker, so it can outlive the borrow and be moved into
/// a task: what [`Breaker::try_acquire_owned`] returns.
pub type OwnedPermit = PermitGuard<Arc<Breaker>>;

/// What a permit remembers of its grant: enough to record or release it later.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    pub(crate) grant: Grant,
    pub(crate) epoch: u64,
    pub(crate) started: Option<Instant>,
}

impl Ticket {
    /// Records `outcome`, measuring the call from the grant when slow-call detection is on.
    #[inline]
    pub(crate) fn record(self, breaker: &Breaker, outcome: Outcome) {
        let now = self.started.map(|_| breaker.clock.now());
        let elapsed = match (self.started, now) {
            (Some(start), Some(now)) => Some(now.saturating_duration_since(start)),
            _ => None,
        };
        breaker.record(self.grant, self.epoch, outcome, elapsed, now);
    }

    /// Gives back a half-open trial slot; nothing is counted.
    #[inline]
    pub(crate) fn release(self, breaker: &Breaker) {
        if self.grant == Grant::Trial {
            breaker.release_trial(self.epoch);
        }
    }
}

/// Permission for one call, holding its breaker through `R` (a reference or an `Arc`; see
/// [`Permit`] and [`OwnedPermit`]). Report how the call went with [`record`](Self::record) (or
/// [`success`](Self::success) / [`failure`](Self::failure)).
///
/// Dropping a permit without recording — the call's future was cancelled — counts nothing; a
/// half-open trial slot it held is given back for another caller.
#[must_use = "a permit records nothing unless its outcome is reported"]
pub struct PermitGuard<R: Deref<Target = Breaker>> {
    breaker: R,
    ticket: Ticket,
    settled: bool,
}

impl<R: Deref<Target = Breaker>> PermitGuard<R> {
    #[inline]
    pub(crate) fn new(breaker: R, ticket: Ticket) -> Self {
        PermitGuard {
            breaker,
            ticket,
            settled: false,
        }
    }

    /// Records the call's outcome. With slow-call detection on, the call's duration is measured
    /// from the moment the permit was granted.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.settled = true;
        self.ticket.record(&self.breaker, outcome);
    }

    /// Records the call's outcome with a duration the caller measured itself.
    pub fn record_elapsed(mut self, outcome: Outcome, elapsed: Duration) {
        self.settled = true;
        let ticket = self.ticket;
        self.breaker
            .record(ticket.grant, ticket.epoch, outcome, Some(elapsed), None);
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
        self.ticket.grant == Grant::Trial
    }

    /// The breaker this permit was granted by.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<R: Deref<Target = Breaker>> Drop for PermitGuard<R> {
    #[inline]
    fn drop(&mut self) {
        if !self.settled {
            self.ticket.release(&self.breaker);
        }
    }
}

impl<R: Deref<Target = Breaker>> fmt::Debug for PermitGuard<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("grant", &self.ticket.grant)
            .field("epoch", &self.ticket.epoch)
            .finish()
    }
}
