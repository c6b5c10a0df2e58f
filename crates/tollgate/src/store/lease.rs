//! Keeping a lease alive while protected work runs, and telling that work when it is lost.
//!
//! One mechanism for every leased primitive: [`keep`] returns the renewal loop (a future to run
//! beside the work — `select!`ed against it in the same task, or spawned) and a [`LeaseLost`]
//! signal that fires **once**, when the store rejects a renewal (the key was taken over:
//! [`LostReason::Fenced`]) or when no renewal has succeeded for a whole lease, so the store
//! may already have let the lease run out ([`LostReason::Expired`]). Work that sees the
//! signal must stop acting as the holder: another holder may be running.
//!
//! The loop measures the lease from the instant each successful renewal was **sent**, on
//! tokio's monotonic clock, so it never believes in a lease longer than the store granted;
//! it never reads a wall clock (the store's time decides expiry, see [`super`]).
//!
//! ```
//! use std::time::Duration;
//! use tollgate::store::{LeaseTiming, LostReason, Settle, lease};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let timing = LeaseTiming::new(Duration::from_secs(30), Duration::from_secs(10));
//! // A store that rejects the first renewal: another holder took the key over.
//! let renew = || async { Ok(Settle::Fenced) };
//! let (keeper, lost) = lease::keep("report/1", timing, tokio::time::Instant::now(), renew);
//! let work = async {
//!     lost.wait().await; // the protected work selects on the signal
//!     "stopped"
//! };
//! let (reason, outcome) = tokio::join!(keeper, work);
//! assert_eq!((reason, outcome), (LostReason::Fenced, "stopped"));
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Settle;
use super::error::StoreError;

/// How long a lease lasts without renewal, and how often its holder renews it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    lease: Duration,
    renew_every: Duration,
}

impl LeaseTiming {
    /// A lease of `lease`, renewed every `renew_every`. The renewal period is kept between
    /// 1 ms and half the lease, so one failed renewal never loses a lease by itself.
    pub fn new(lease: Duration, renew_every: Duration) -> Self {
        let lease = lease.max(Duration::from_millis(2));
        let renew_every = renew_every.clamp(Duration::from_millis(1), lease / 2);
        LeaseTiming { lease, renew_every }
    }

    /// How long the lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How often the holder renews it.
    pub fn renew_every(&self) -> Duration {
        self.renew_every
    }
}

/// Why a holder lost its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LostReason {
    /// The store rejected a renewal: the key was taken over, finished or removed.
    Fenced,
    /// No renewal succeeded for a whole lease (the store was unreachable or too slow): the
    /// store may already have let the lease run out.
    Expired,
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LostReason::Fenced => "the lease was taken over",
            LostReason::Expired => "the lease could not be renewed in time",
        })
    }
}

/// The lost-lease signal: fires once, with its reason, when the lease is lost. Clones observe
/// the same signal. If the lease ends normally (the renewal loop is dropped because the work
/// finished), it never fires.
#[derive(Clone, Debug)]
pub struct LeaseLost {
    fired: watch::Receiver<Option<LostReason>>,
}

impl LeaseLost {
    /// Why the lease was lost, if it was.
    pub fn reason(&self) -> Option<LostReason> {
        *self.fired.borrow()
    }

    /// Resolves when the lease is lost; pends forever if the lease ends normally. Made to be
    /// `select!`ed against the protected work.
    pub async fn wait(&self) -> LostReason {
        let mut fired = self.fired.clone();
        // The borrow of the channel ends with this statement, so the future stays `Send`
        // (a task spawned to watch the signal must be able to await it).
        let reason = fired.wait_for(Option::is_some).await.ok().and_then(|r| *r);
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

/// The renewal loop of one lease, and its lost-lease signal.
///
/// `granted_at` is the instant the claim that granted the lease was sent; `renew` performs one
/// renewal on the store (fenced by the holder's token). The returned future renews every
/// [`LeaseTiming::renew_every`], retries a failed renewal sooner (a quarter of the period),
/// and completes — firing the signal — when the lease is lost. `name` labels the logs.
pub fn keep<R, Fut>(
    name: impl fmt::Display,
    timing: LeaseTiming,
    granted_at: Instant,
    renew: R,
) -> (impl Future<Output = LostReason>, LeaseLost)
where
    R: FnMut() -> Fut,
    Fut: Future<Output = Result<Settle, StoreError>>,
{
    let (signal, fired) = watch::channel(None);
    let keeper = Keeper {
        name: name.to_string(),
        timing,
        held_until: granted_at + timing.lease,
        renew,
        signal,
    };
    (keeper.run(), LeaseLost { fired })
}

struct Keeper<R> {
    name: String,
    timing: LeaseTiming,
    held_until: Instant,
    renew: R,
    signal: watch::Sender<Option<LostReason>>,
}

impl<R, Fut> Keeper<R>
where
    R: FnMut() -> Fut,
    Fut: Future<Output = Result<Settle, StoreError>>,
{
    async fn run(mut self) -> LostReason {
        let mut next = Instant::now() + self.timing.renew_every;
        loop {
            tokio::time::sleep_until(next.min(self.held_until)).await;
            let sent = Instant::now();
            if sent >= self.held_until {
                return self.lose(LostReason::Expired);
            }
            match tokio::time::timeout_at(self.held_until, (self.renew)()).await {
                Ok(Ok(Settle::Accepted)) => {
                    self.held_until = sent + self.timing.lease;
                    next = sent + self.timing.renew_every;
                }
                Ok(Ok(Settle::Fenced)) => return self.lose(LostReason::Fenced),
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.name, error = %e, "lease: renewal failed");
                    next = Instant::now()
                        + (self.timing.renew_every / 4).max(Duration::from_millis(1));
                }
                Err(_) => return self.lose(LostReason::Expired),
            }
        }
    }

    fn lose(&self, reason: LostReason) -> LostReason {
        lose(&self.name, &self.signal, reason);
        reason
    }
}

/// The sending side of a [`LeaseLost`] signal, for renewal loops other than [`keep`] (the
/// lock's one renewal driver per `Locks`).
pub(crate) fn signal() -> (watch::Sender<Option<LostReason>>, LeaseLost) {
    let (signal, fired) = watch::channel(None);
    (signal, LeaseLost { fired })
}

/// Logs and counts a lost lease, then fires its signal.
pub(crate) fn lose(
    name: &dyn fmt::Display,
    signal: &watch::Sender<Option<LostReason>>,
    reason: LostReason,
) {
    tracing::warn!(lease = %name, %reason, "lease: lost");
    metrics::counter!("tollgate_lease_lost_total", "reason" => reason.label()).increment(1);
    signal.send_replace(Some(reason));
}

impl LostReason {
    /// The metrics label: `fenced` or `expired`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            LostReason::Fenced => "fenced",
            LostReason::Expired => "expired",
        }
    }
}
