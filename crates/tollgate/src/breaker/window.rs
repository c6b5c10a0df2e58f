//! Sliding windows of call outcomes: the last N calls, or the calls of the last T.
//!
//! [`SlidingWindow`] names the kind and size a breaker is configured with; the rest of this
//! module implements it. The configuration builds on this module, never the other way round.
//!
//! The count window does not store successes at all: calls are numbered by the counter in the
//! breaker's atomic word, and the window keeps only the positions of the failures and slow calls
//! among the last N. A plain success is therefore one compare-and-swap, without the lock. The
//! time window keeps per-bucket totals. Both are plain data guarded by the breaker's lock, and
//! O(1) amortised.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How the breaker remembers recent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlidingWindow {
    /// The last `n` calls.
    Count(u32),
    /// The calls of the last `length`, kept in `buckets` equal buckets: a bucket leaves the window
    /// as a whole once it is older than `length`.
    Time {
        /// How far back the window reaches.
        length: Duration,
        /// How many buckets the window is cut into (its resolution).
        buckets: u32,
    },
}

impl SlidingWindow {
    /// A time-based window of `length` with one bucket per second (at least one bucket).
    pub fn time(length: Duration) -> Self {
        let secs = u32::try_from(length.as_secs()).unwrap_or(u32::MAX);
        SlidingWindow::Time {
            length,
            buckets: secs.clamp(1, 600),
        }
    }
}

const FAILURE: u8 = 0b01;
const SLOW: u8 = 0b10;

/// One recorded call: whether it failed and whether it was slow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sample(u8);

impl Sample {
    pub(crate) fn new(failed: bool, slow: bool) -> Self {
        Sample(if failed { FAILURE } else { 0 } | if slow { SLOW } else { 0 })
    }

    /// A success that was not slow: the only kind a count window does not store.
    pub(crate) fn is_plain_success(self) -> bool {
        self.0 == 0
    }

    fn failed(self) -> bool {
        self.0 & FAILURE != 0
    }

    fn slow(self) -> bool {
        self.0 & SLOW != 0
    }
}

/// Counts of the calls currently in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Calls recorded (ignored outcomes are not calls).
    pub calls: u32,
    /// Of which failed.
    pub failures: u32,
    /// Of which were slow.
    pub slow: u32,
}

impl Totals {
    fn add(&mut self, sample: Sample) {
        self.calls += 1;
        self.failures += u32::from(sample.failed());
        self.slow += u32::from(sample.slow());
    }

    fn remove(&mut self, other: Totals) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow -= other.slow;
    }

    /// Whether `part` of the calls reaches `threshold` percent (no division on this path).
    pub(crate) fn reaches(&self, part: u32, threshold: f64) -> bool {
        self.calls > 0 && f64::from(part) * 100.0 >= threshold * f64::from(self.calls)
    }

    /// Failure rate in percent (0 when empty).
    pub fn failure_rate(&self) -> f64 {
        percent(self.failures, self.calls)
    }

    /// Slow-call rate in percent (0 when empty).
    pub fn slow_rate(&self) -> f64 {
        percent(self.slow, self.calls)
    }
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

/// Reach of a position in the call counter before it must have been evicted (the counter wraps
/// at 2^32; every 2^30 calls the breaker purges, so no kept position is ever older than 2^31).
pub(crate) const PURGE_EVERY: u32 = 1 << 30;

/// The largest count window: positions must stay far below the purge distance.
pub(crate) const MAX_COUNT_WINDOW: u32 = 1 << 24;

#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow, now: Instant) -> Self {
        match kind {
            SlidingWindow::Count(size) => Window::Count(CountWindow::new(size)),
            SlidingWindow::Time { length, buckets } => {
                Window::Time(TimeWindow::new(length, buckets, now))
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Window::Count(w) => w.clear(),
            Window::Time(w) => w.clear(),
        }
    }
}

/// The last `size` calls, numbered by the breaker's call counter.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u32,
    failures: VecDeque<u32>,
    slow: VecDeque<u32>,
    /// The counter went past `PURGE_EVERY` at least once: the window is full for good.
    wrapped: bool,
}

impl CountWindow {
    fn new(size: u32) -> Self {
        let capacity = size.clamp(1, 4_096) as usize;
        CountWindow {
            size: size.max(1),
            failures: VecDeque::with_capacity(capacity),
            slow: VecDeque::with_capacity(capacity),
            wrapped: false,
        }
    }

    /// Records that call number `position` failed and/or was slow.
    pub(crate) fn record(&mut self, position: u32, sample: Sample) -> Totals {
        if sample.failed() {
            self.failures.push_back(position);
        }
        if sample.slow() {
            self.slow.push_back(position);
        }
        self.totals(position)
    }

    /// The totals once `count` calls were made.
    pub(crate) fn totals(&mut self, count: u32) -> Totals {
        let size = self.size;
        let old = |p: &u32| count.wrapping_sub(*p) >= size;
        while self.failures.front().is_some_and(old) {
            self.failures.pop_front();
        }
        while self.slow.front().is_some_and(old) {
            self.slow.pop_front();
        }
        self.wrapped |= count >= PURGE_EVERY;
        Totals {
            calls: if self.wrapped { size } else { count.min(size) },
            failures: self.failures.len() as u32,
            slow: self.slow.len() as u32,
        }
    }

    fn clear(&mut self) {
        self.failures.clear();
        self.slow.clear();
        self.wrapped = false;
    }
}

#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Totals]>,
    width_nanos: u128,
    origin: Instant,
    /// Absolute index (since `origin`) of the newest bucket in use.
    head: u64,
    totals: Totals,
}

impl TimeWindow {
    fn new(length: Duration, buckets: u32, now: Instant) -> Self {
        let count = buckets.max(1);
        TimeWindow {
            buckets: vec![Totals::default(); count as usize].into_boxed_slice(),
            width_nanos: (length.as_nanos() / u128::from(count)).max(1),
            origin: now,
            head: 0,
            totals: Totals::default(),
        }
    }

    fn index_of(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since / self.width_nanos).unwrap_or(u64::MAX)
    }

    /// Moves the head to `now`, emptying every bucket that left the window on the way.
    fn advance(&mut self, now: Instant) {
        let target = self.index_of(now);
        if target <= self.head {
            return;
        }
        let len = self.buckets.len() as u64;
        let steps = (target - self.head).min(len);
        for step in 1..=steps {
            let slot = ((self.head + step) % len) as usize;
            let expired = std::mem::take(&mut self.buckets[slot]);
            self.totals.remove(expired);
        }
        self.head = target;
    }

    pub(crate) fn record(&mut self, sample: Sample, now: Instant) -> Totals {
        self.advance(now);
        let slot = (self.head % self.buckets.len() as u64) as usize;
        self.buckets[slot].add(sample);
        self.totals.add(sample);
        self.totals
    }

    /// The totals as of `now`.
    pub(crate) fn totals(&mut self, now: Instant) -> Totals {
        self.advance(now);
        self.totals
    }

    fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = Totals::default());
        self.totals = Totals::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Sample = Sample(0);
    const FAIL: Sample = Sample(FAILURE);

    fn counted(w: &mut CountWindow, position: u32, sample: Sample) -> Totals {
        if sample == OK {
            w.totals(position)
        } else {
            w.record(position, sample)
        }
    }

    #[test]
    fn count_window_forgets_the_oldest_call() {
        let mut w = CountWindow::new(3);
        counted(&mut w, 1, FAIL);
        counted(&mut w, 2, FAIL);
        assert_eq!(
            counted(&mut w, 3, OK),
            Totals {
                calls: 3,
                failures: 2,
                slow: 0
            }
        );
        // The first failure leaves the window.
        let slow = Sample::new(false, true);
        assert_eq!(
            counted(&mut w, 4, slow),
            Totals {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(
            counted(&mut w, 5, OK),
            Totals {
                calls: 3,
                failures: 0,
                slow: 1
            }
        );
        w.clear();
        assert_eq!(w.totals(0), Totals::default());
    }

    #[test]
    fn count_window_survives_the_counter_wrapping() {
        let mut w = CountWindow::new(10);
        assert_eq!(
            w.totals(PURGE_EVERY),
            Totals {
                calls: 10,
                failures: 0,
                slow: 0
            }
        );
        counted(&mut w, u32::MAX - 1, FAIL);
        counted(&mut w, u32::MAX, FAIL);
        // 0 and 1 follow u32::MAX: both failures are among the last 10 calls.
        assert_eq!(
            w.totals(1),
            Totals {
                calls: 10,
                failures: 2,
                slow: 0
            }
        );
        assert_eq!(
            w.totals(8),
            Totals {
                calls: 10,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_drops_whole_buckets_as_they_expire() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = TimeWindow::new(s(3), 3, t0);
        w.record(FAIL, t0);
        w.record(OK, t0 + s(1));
        w.record(FAIL, t0 + s(2));
        assert_eq!(
            w.totals(t0 + s(2)),
            Totals {
                calls: 3,
                failures: 2,
                slow: 0
            }
        );
        // Bucket 0 (the first failure) expires at t0 + 3s.
        assert_eq!(
            w.totals(t0 + s(3)),
            Totals {
                calls: 2,
                failures: 1,
                slow: 0
            }
        );
        // A long silence empties everything, however many buckets were skipped.
        assert_eq!(w.totals(t0 + s(100)), Totals::default());
        assert_eq!(
            w.record(FAIL, t0 + s(100)),
            Totals {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
    }

    #[test]
    fn a_time_window_gets_one_bucket_per_second() {
        assert_eq!(
            SlidingWindow::time(Duration::from_secs(30)),
            SlidingWindow::Time {
                length: Duration::from_secs(30),
                buckets: 30
            }
        );
    }

    #[test]
    fn rates_are_percentages_and_zero_when_empty() {
        let t = Totals {
            calls: 4,
            failures: 1,
            slow: 2,
        };
        assert_eq!(t.failure_rate(), 25.0);
        assert_eq!(t.slow_rate(), 50.0);
        assert!(t.reaches(t.slow, 50.0) && !t.reaches(t.failures, 25.1));
        assert_eq!(Totals::default().failure_rate(), 0.0);
        assert!(!Totals::default().reaches(0, 50.0));
    }
}
