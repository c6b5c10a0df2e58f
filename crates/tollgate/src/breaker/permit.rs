//! The permit: a guard for one call let through by the breaker, borrowed or owned.
//!
//! [`Permit`] borrows its breaker (the fastest: no reference count is touched);
//! [`OwnedPermit`] holds an `Arc` of it, so it can be moved into a spawned task or kept in a
//! named future. Both are the one [`PermitGuard`] and behave the same.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::classify::Outcome;
use super::machine::Grant;
use super::{Breaker, NotPermitted};

/// A permit that borrows its breaker: what [`Breaker::try_acquire`] returns.
pub type Permit<'a> = PermitGuard<&'a Breaker>;

/// A permit that owns an `Arc` of its breaker, so it can outlive the borrow and be moved into
/// a task: what [`Breaker::try_acquire_owned`] returns.
pub type OwnedPermit = PermitGuard<Arc<Breaker>>;

/// The grant bits of a ticket that is a marker rather than a grant.
const MARKER: u64 = 0b11;

/// What a permit remembers of its grant: enough to record or release it later.
///
/// Two plain words with no padding (the grant and epoch packed in one, the start as
/// nanoseconds since the breaker's origin): it is moved in and out of futures on every call,
/// and a struct with padding bytes was copied in overlapping pieces that stalled the CPU's
/// store forwarding (half of a guarded call's time, measured with `perf annotate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    /// `epoch << 2 | grant`, or a marker ([`Ticket::UNASKED`], [`Ticket::SETTLED`]).
    tag: u64,
    /// Nanoseconds from the breaker's origin to the grant, plus one; 0 when the call is not
    /// timed (no slow-call detection).
    started: u64,
}

impl Ticket {
    /// No grant yet: the call has not asked the breaker (a marker, never a grant).
    pub(crate) const UNASKED: Ticket = Ticket {
        tag: MARKER,
        started: 0,
    };

    /// No grant any more: the outcome was recorded, or the call was rejected (a marker).
    pub(crate) const SETTLED: Ticket = Ticket {
        tag: MARKER | 1 << 2,
        started: 0,
    };

    #[inline]
    pub(crate) fn new(grant: Grant, epoch: u64, started: Option<u64>) -> Self {
        Ticket {
            tag: (epoch << 2) | grant as u64,
            started: started.map_or(0, |nanos| nanos.saturating_add(1)),
        }
    }

    /// The grant; a marker counts as untracked (recording or releasing it does nothing).
    #[inline]
    pub(crate) fn grant(self) -> Grant {
        match self.tag & 0b11 {
            0 => Grant::Windowed,
            1 => Grant::Trial,
            _ => Grant::Untracked,
        }
    }

    /// Whether this is a real grant, not a marker.
    #[inline]
    pub(crate) fn is_grant(self) -> bool {
        self.tag & MARKER != MARKER
    }

    #[inline]
    pub(crate) fn epoch(self) -> u64 {
        self.tag >> 2
    }

    /// Records `outcome`, measuring the call from the grant when slow-call detection is on.
    ///
    /// The common case — an untimed success — is inlined into the caller's future; everything
    /// else goes through [`record_any`](Self::record_any), out of line.
    #[inline]
    pub(crate) fn record(self, breaker: &Breaker, outcome: Outcome) {
        if self.started == 0 && outcome == Outcome::Success && self.grant() == Grant::Windowed {
            return breaker.plain_success(self.epoch());
        }
        self.record_any(breaker, outcome);
    }

    /// [`record`](Self::record) for any outcome, grant and window.
    #[inline(never)]
    fn record_any(self, breaker: &Breaker, outcome: Outcome) {
        let (elapsed, now) = match self.started {
            0 => (None, None),
            started => {
                let now = breaker.clock.now();
                let since = breaker.nanos_since_origin(now);
                let elapsed = Duration::from_nanos(since.saturating_sub(started - 1));
                (Some(elapsed), Some(now))
            }
        };
        breaker.record(self.grant(), self.epoch(), outcome, elapsed, now);
    }

    /// Gives back a half-open trial slot; nothing is counted.
    #[inline]
    pub(crate) fn release(self, breaker: &Breaker) {
        if self.grant() == Grant::Trial {
            breaker.release_trial(self.epoch());
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
    /// [`Ticket::SETTLED`] once recorded: the guard is two words plus the breaker, no flag
    /// and no padding.
    ticket: Ticket,
}

impl<R: Deref<Target = Breaker>> PermitGuard<R> {
    #[inline]
    pub(crate) fn new(breaker: R, ticket: Ticket) -> Self {
        PermitGuard { breaker, ticket }
    }

    /// Asks `breaker` for one call, holding it through a clone of `breaker` (taken only when
    /// the call is let through). For code generic over how the breaker is held:
    /// [`Breaker::try_acquire_owned`] is this with an `Arc`, and with a `&'static Breaker` (a
    /// breaker in a `static`, or leaked once at start-up) the permit is `'static` without
    /// touching a reference count.
    ///
    /// ```
    /// use std::sync::LazyLock;
    /// use tollgate::breaker::{Breaker, BreakerConfig, PermitGuard};
    ///
    /// static DB: LazyLock<Breaker> =
    ///     LazyLock::new(|| Breaker::new("db", BreakerConfig::default()).unwrap());
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let breaker: &'static Breaker = &DB;
    /// let permit = PermitGuard::try_acquire(&breaker).unwrap();
    /// tokio::spawn(async move { permit.success() }).await.unwrap();
    /// assert_eq!(DB.totals().calls, 1);
    /// # }
    /// ```
    #[inline]
    pub fn try_acquire(breaker: &R) -> Result<Self, NotPermitted>
    where
        R: Clone,
    {
        breaker
            .grant()
            .map(|ticket| PermitGuard::new(breaker.clone(), ticket))
    }

    /// Records the call's outcome. With slow-call detection on, the call's duration is measured
    /// from the moment the permit was granted.
    #[inline(always)]
    pub fn record(mut self, outcome: Outcome) {
        self.settle(outcome);
    }

    /// Records the call's outcome where the permit is, leaving it spent: recording it again
    /// or dropping it does nothing more. For a permit kept in a field of a named future (as
    /// tollgate-tower's), where moving it out to [`record`](Self::record) would copy it just
    /// after it was written — a copy the CPU cannot always forward from the stores that wrote
    /// it (measured in `docs/PERFORMANCE.md`, session 14).
    ///
    /// ```
    /// use tollgate::breaker::{Breaker, BreakerConfig, Outcome};
    ///
    /// let breaker = Breaker::new("db", BreakerConfig::default()).unwrap();
    /// let mut permit = breaker.try_acquire().unwrap();
    /// permit.settle(Outcome::Success);
    /// permit.settle(Outcome::Failure); // spent: not recorded
    /// drop(permit);
    /// assert_eq!((breaker.totals().calls, breaker.totals().failures), (1, 0));
    /// ```
    #[inline(always)]
    pub fn settle(&mut self, outcome: Outcome) {
        let ticket = std::mem::replace(&mut self.ticket, Ticket::SETTLED);
        ticket.record(&self.breaker, outcome);
    }

    /// Records the call's outcome with a duration the caller measured itself.
    pub fn record_elapsed(mut self, outcome: Outcome, elapsed: Duration) {
        let ticket = std::mem::replace(&mut self.ticket, Ticket::SETTLED);
        self.breaker
            .record(ticket.grant(), ticket.epoch(), outcome, Some(elapsed), None);
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
        self.ticket.grant() == Grant::Trial
    }

    /// The breaker this permit was granted by.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<R: Deref<Target = Breaker>> Drop for PermitGuard<R> {
    #[inline]
    fn drop(&mut self) {
        // A settled ticket is a marker: releasing it does nothing.
        self.ticket.release(&self.breaker);
    }
}

impl<R: Deref<Target = Breaker>> fmt::Debug for PermitGuard<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut permit = f.debug_struct("Permit");
        permit.field("breaker", &self.breaker.name());
        if self.ticket == Ticket::SETTLED {
            // Recorded (`settle`): the grant is gone.
            return permit.field("settled", &true).finish();
        }
        permit
            .field("grant", &self.ticket.grant())
            .field("epoch", &self.ticket.epoch())
            .finish()
    }
}
