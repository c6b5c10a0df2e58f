//! Whose clock the store reads: the server's, or — in tests only — a pinned one.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tollgate::store::Timestamp;

/// A **test hook**: a store time the test sets by hand, shared by every handle given a clone.
///
/// In production the store's time is the server's `clock_timestamp()`, read inside every
/// statement (so callers whose clocks disagree still agree on every lease). A test cannot move
/// the server's clock, and an offset added to a clock that keeps running cannot pin a lease
/// boundary to the millisecond (the conformance suite checks a 100 ms lease 1 ms before and
/// exactly at its end). So with a `PinnedTime`, every statement reads this value *instead of*
/// `clock_timestamp()`, passed as a parameter; it moves only by [`PinnedTime::advance`].
/// Never use it in production: time would stand still.
#[derive(Clone, Debug)]
pub struct PinnedTime(Arc<AtomicI64>);

impl PinnedTime {
    /// Pinned at the host's current wall-clock time.
    pub fn new() -> Self {
        let now = i64::try_from(Timestamp::system_now().0).unwrap_or(i64::MAX);
        PinnedTime(Arc::new(AtomicI64::new(now)))
    }

    /// Moves the pinned time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// The pinned time, in milliseconds since the Unix epoch.
    pub fn now(&self) -> Timestamp {
        Timestamp(u64::try_from(self.millis()).unwrap_or(0))
    }

    fn millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Default for PinnedTime {
    fn default() -> Self {
        Self::new()
    }
}

/// The `pinned` parameter every statement passes to `now_ms(pinned)`: `None` (the server's
/// clock) unless a test pinned the time.
pub(crate) fn pinned(time: Option<&PinnedTime>) -> Option<i64> {
    time.map(PinnedTime::millis)
}

/// A duration as the milliseconds the statements add to the store's time.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(MAX_MS, |ms| ms.min(MAX_MS))
}

/// The longest duration sent to the statements, in ms: 2^50 ms, about 35,700 years. Longer
/// ones (`Duration::MAX` for "keep it") are cut to it, so that `now_ms + $n` stays inside
/// `bigint` (at `i64::MAX` it failed with "bigint out of range", and the result was never
/// stored).
pub(crate) const MAX_MS: i64 = 1 << 50;
