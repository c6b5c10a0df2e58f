//! Sliding windows of call outcomes: the last N calls, or the calls of the last T.
//!
//! Both keep running totals so recording and reading are O(1) (amortised for the time window,
//! which clears the buckets it skipped over). They are plain data: the breaker guards them with
//! its lock.

use std::time::Duration;

use tokio::time::Instant;

use super::config::SlidingWindow;
use super::machine::Now;

const FAILURE: u8 = 0b01;
const SLOW: u8 = 0b10;

/// One recorded call: whether it failed and whether it was slow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sample(u8);

impl Sample {
    pub(crate) fn new(failed: bool, slow: bool) -> Self {
        Sample(if failed { FAILURE } else { 0 } | if slow { SLOW } else { 0 })
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

    /// Records a sample; only the time window reads the time.
    pub(crate) fn record(&mut self, sample: Sample, now: &mut Now<'_>) -> Totals {
        match self {
            Window::Count(w) => w.record(sample),
            Window::Time(w) => w.record(sample, now.get()),
        }
    }

    /// The totals as of `now` (a time window first drops the buckets that expired).
    pub(crate) fn totals(&mut self, now: Instant) -> Totals {
        match self {
            Window::Count(w) => w.totals,
            Window::Time(w) => {
                w.advance(now);
                w.totals
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

#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[Sample]>,
    next: usize,
    filled: usize,
    totals: Totals,
}

impl CountWindow {
    fn new(size: u32) -> Self {
        CountWindow {
            slots: vec![Sample::default(); size.max(1) as usize].into_boxed_slice(),
            next: 0,
            filled: 0,
            totals: Totals::default(),
        }
    }

    fn record(&mut self, sample: Sample) -> Totals {
        if self.filled == self.slots.len() {
            let evicted = self.slots[self.next];
            let mut gone = Totals::default();
            gone.add(evicted);
            self.totals.remove(gone);
        } else {
            self.filled += 1;
        }
        self.slots[self.next] = sample;
        self.next = (self.next + 1) % self.slots.len();
        self.totals.add(sample);
        self.totals
    }

    fn clear(&mut self) {
        self.slots.fill(Sample::default());
        self.next = 0;
        self.filled = 0;
        self.totals = Totals::default();
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

    fn record(&mut self, sample: Sample, now: Instant) -> Totals {
        self.advance(now);
        let slot = (self.head % self.buckets.len() as u64) as usize;
        self.buckets[slot].add(sample);
        self.totals.add(sample);
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
    use crate::clock::{Clock, ManualClock};

    const OK: Sample = Sample(0);
    const FAIL: Sample = Sample(FAILURE);

    #[test]
    fn count_window_forgets_the_oldest_call() {
        let clock = Clock::default();
        let now = &mut Now::new(None, &clock);
        let mut w = Window::new(SlidingWindow::Count(3), Instant::now());
        w.record(FAIL, now);
        w.record(FAIL, now);
        assert_eq!(
            w.record(OK, now),
            Totals {
                calls: 3,
                failures: 2,
                slow: 0
            }
        );
        // The first failure leaves the window.
        let slow = Sample::new(false, true);
        assert_eq!(
            w.record(slow, now),
            Totals {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        assert_eq!(
            w.record(OK, now),
            Totals {
                calls: 3,
                failures: 0,
                slow: 1
            }
        );
        w.clear();
        assert_eq!(w.totals(Instant::now()), Totals::default());
    }

    #[test]
    fn time_window_drops_whole_buckets_as_they_expire() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let t0 = manual.now();
        let s = Duration::from_secs;
        let mut w = Window::new(
            SlidingWindow::Time {
                length: s(3),
                buckets: 3,
            },
            t0,
        );
        w.record(FAIL, &mut Now::new(None, &clock));
        manual.advance(s(1));
        w.record(OK, &mut Now::new(None, &clock));
        w.record(FAIL, &mut Now::new(Some(t0 + s(2)), &clock));
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
        let late = &mut Now::new(Some(t0 + s(100)), &clock);
        assert_eq!(
            w.record(FAIL, late),
            Totals {
                calls: 1,
                failures: 1,
                slow: 0
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
        assert_eq!(Totals::default().failure_rate(), 0.0);
    }
}
