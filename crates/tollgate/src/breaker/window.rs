//! Sliding windows of call outcomes: the last N calls, or the calls of the last T.
//!
//! [`SlidingWindow`] names the kind and size a breaker is configured with; the rest of this
//! module implements it. The configuration builds on this module, never the other way round.
//!
//! The count window does not store successes at all: calls are numbered by the counter in the
//! breaker's atomic word, and the window keeps only the positions of the failures and slow calls
//! among the last N. A plain success is therefore one compare-and-swap, without the lock.
//!
//! The time window keeps per-bucket totals of its failures and slow calls under the breaker's
//! lock, and counts its plain successes outside it, in [`PlainCounts`]: one atomic word per
//! bucket, tagged with the bucket's index and the window's epoch. A plain success is one
//! compare-and-swap there and one load of the window's [`Quiet`] word, which the last decision
//! under the lock left: whether any success of the current bucket could open the breaker. A
//! success takes the lock only when one could: the first success of a bucket after the window
//! took a failure or a slow call (buckets may have left the window, so the rate is computed
//! again), and while the window holds fewer than its minimum number of calls with enough
//! failures or slow calls to open once it has them. Both parts are O(1) amortised per call;
//! reading the totals sums the bucket words.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::{AtomicU64, Ordering};

/// How the breaker remembers recent calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlidingWindow {
    /// The last `n` calls.
    Count(u32),
    /// The calls of the last `length`, kept in `buckets` equal buckets: a bucket leaves the window
    /// as a whole once it is older than `length`.
    ///
    /// A success takes no lock (unless it could open the breaker, see the
    /// [module docs](crate::breaker)) but reads the clock once, which is most of its cost with
    /// the default clock; a breaker called at a high rate can read the kernel's coarse clock
    /// instead ([`Clock::Coarse`](crate::clock::Clock::Coarse)).
    Time {
        /// How far back the window reaches.
        length: Duration,
        /// How many buckets the window is cut into (its resolution): 1 to 1,048,576.
        buckets: u32,
    },
}

impl SlidingWindow {
    /// A time-based window of `length` with one bucket per second: at least 1 bucket and at
    /// most 600 (a window longer than 10 minutes gets longer buckets: an hour, 600 of 6 s).
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

/// How a time window cuts time into buckets: bucket `i` covers
/// `[origin + i·width, origin + (i+1)·width)`. The locked part and the lock-free part of one
/// window are built from the same grid, so they agree on every bucket.
#[derive(Clone, Copy, Debug)]
struct Grid {
    origin: Instant,
    width_nanos: u64,
    buckets: u32,
}

impl Grid {
    fn new(length: Duration, buckets: u32, origin: Instant) -> Self {
        let buckets = buckets.max(1);
        Grid {
            origin,
            width_nanos: u64::try_from(length.as_nanos() / u128::from(buckets))
                .unwrap_or(u64::MAX)
                .max(1),
            buckets,
        }
    }

    /// The number of buckets, as a bucket age.
    fn len(&self) -> i64 {
        i64::from(self.buckets)
    }

    /// Nanoseconds from `origin` to `now` (0 before it; saturated after 584 years).
    fn nanos_since(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    /// The absolute index (since `origin`) of the bucket `now` falls in.
    fn index_of(&self, now: Instant) -> u64 {
        self.nanos_since(now) / self.width_nanos
    }
}

#[derive(Debug)]
pub(crate) struct TimeWindow {
    grid: Grid,
    buckets: Box<[Totals]>,
    /// Absolute index (since the grid's origin) of the newest bucket in use.
    head: u64,
    totals: Totals,
}

impl TimeWindow {
    fn new(length: Duration, buckets: u32, now: Instant) -> Self {
        let grid = Grid::new(length, buckets, now);
        TimeWindow {
            buckets: vec![Totals::default(); grid.buckets as usize].into_boxed_slice(),
            grid,
            head: 0,
            totals: Totals::default(),
        }
    }

    /// Moves the head to `now`, emptying every bucket that left the window on the way.
    fn advance(&mut self, now: Instant) {
        let target = self.grid.index_of(now);
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

    /// The absolute index of the newest bucket in use.
    pub(crate) fn head(&self) -> u64 {
        self.head
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

/// The plain successes of a time window, counted without the breaker's lock.
///
/// One word per bucket: `epoch tag (8 bits) | bucket index (28 bits) | count (28 bits)`. The
/// tag is the low byte of the epoch of the windowed state the calls were permitted in (the
/// epoch at which the window was last emptied), so a word left by an earlier window is not
/// read. Every new window also empties the words ([`PlainCounts::clear`]): a tag is one byte,
/// and the window 256 epochs later would read a word left by an earlier one. A word whose index is older than the
/// one a call falls in is taken over by that call (its bucket has left the window). Indexes
/// are compared modulo 2^28 (a bucket of 1 ms wraps after 3.1 days, one of 1 s after 8.5 years),
/// which is why a window has at most [`MAX_BUCKETS`] buckets; a bucket counts up to 2^28 - 1
/// (268 M) plain successes — far more than any breaker is called in one bucket — before the
/// rest of its successes go to the lock.
#[derive(Debug)]
pub(crate) struct PlainCounts {
    grid: Grid,
    slots: Box<[AtomicU64]>,
    /// Whether a plain success can open the breaker: [`Quiet`], encoded by [`Quiet::word`].
    quiet: AtomicU64,
    /// The bucket some recent call fell in, `index << SLOT_BITS | slot`: a hint, checked
    /// before use (see [`PlainCounts::bucket`]).
    recent: AtomicU64,
}

/// A bucket a call counts in: its absolute index since the grid's origin, and the slot (the
/// index modulo the number of buckets) that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) index: u64,
    slot: usize,
}

/// Bits of a slot in [`PlainCounts::recent`]: a window has at most [`MAX_BUCKETS`] (2^20).
/// The index gets the other 44 bits: a bucket past 2^44 (4.9 hours of 1 ns buckets, 203 days
/// of 1 µs ones, 557 years of 1 ms ones) is not remembered, and each call finds it by division.
const SLOT_BITS: u32 = 20;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const _: () = assert!(MAX_BUCKETS as u64 <= SLOT_MASK + 1);

/// Whether one more plain success could open the breaker, as the last decision under the lock
/// found: a success raises the number of calls and lowers both rates, so it can open the
/// breaker only by bringing the window to its minimum number of calls while a rate is at its
/// threshold, or, once buckets have left the window, because the rate changed with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quiet {
    /// No success can: the window holds no failure and no slow call (they enter only under the
    /// lock, which decides again), or the breaker is not closed.
    Always,
    /// No success counted in this bucket (absolute index) can: nothing leaves the window
    /// before the next bucket. (Reading the totals, which moves the locked part on when a
    /// bucket has left, stores `Never`: a success that read its clock just before may still
    /// count in this bucket, and must decide on what is left.)
    In(u64),
    /// Some success may: each decides under the lock.
    Never,
}

const QUIET_ALWAYS: u64 = u64::MAX;
const QUIET_NEVER: u64 = u64::MAX - 1;

impl Quiet {
    /// One word: a bucket index, or one of two values no index reaches (an index counts
    /// buckets since the breaker was built: 2^64 - 2 of them is 584 years of 1 ns buckets).
    fn word(self) -> u64 {
        match self {
            Quiet::Always => QUIET_ALWAYS,
            Quiet::In(index) => index.min(QUIET_NEVER - 1),
            Quiet::Never => QUIET_NEVER,
        }
    }
}

/// What became of a plain success offered to [`PlainCounts::add`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// Counted in its bucket.
    Counted,
    /// Not counted: its window is over, or the call is older than the whole window.
    Dropped,
    /// Its bucket's count is full: record it under the lock instead.
    Full,
}

const COUNT_BITS: u32 = 28;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const INDEX_BITS: u32 = 28;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const TAG_SHIFT: u32 = COUNT_BITS + INDEX_BITS;

/// The most buckets a time window may have: bucket ages, compared modulo 2^28, stay far from
/// the wrap.
pub(crate) const MAX_BUCKETS: u32 = 1 << 20;

fn pack(tag: u64, index: u32, count: u64) -> u64 {
    (tag << TAG_SHIFT) | ((u64::from(index) & INDEX_MASK) << COUNT_BITS) | count
}

/// `(tag, index, count)` of a bucket word.
fn unpack(word: u64) -> (u64, u32, u64) {
    (
        word >> TAG_SHIFT,
        ((word >> COUNT_BITS) & INDEX_MASK) as u32,
        word & COUNT_MAX,
    )
}

/// A bucket index as stored in a word: its low 28 bits.
fn wrapped(index: u64) -> u32 {
    (index & INDEX_MASK) as u32
}

/// How many buckets `index` is older than `head` (negative: newer), both wrapped.
fn age(head: u32, index: u32) -> i64 {
    let diff = u64::from(head.wrapping_sub(index)) & INDEX_MASK;
    // Sign-extend from 28 bits.
    if diff >> (INDEX_BITS - 1) == 0 {
        diff as i64
    } else {
        diff as i64 - (1 << INDEX_BITS)
    }
}

impl PlainCounts {
    /// The lock-free part of a time window of `kind`; `None` for a count window.
    pub(crate) fn new(kind: SlidingWindow, origin: Instant) -> Option<Self> {
        let SlidingWindow::Time { length, buckets } = kind else {
            return None;
        };
        let grid = Grid::new(length, buckets, origin);
        Some(PlainCounts {
            slots: (0..grid.buckets).map(|_| AtomicU64::new(0)).collect(),
            grid,
            quiet: AtomicU64::new(QUIET_ALWAYS),
            recent: AtomicU64::new(0),
        })
    }

    /// The bucket `now` falls in. Most calls fall in the bucket of the call before, which
    /// [`PlainCounts::recent`] remembers: checking it is a multiplication, where finding the
    /// bucket is two divisions (a third of the breaker's own time on a success, by `perf`).
    #[inline]
    pub(crate) fn bucket(&self, now: Instant) -> Bucket {
        let (nanos, width) = (self.grid.nanos_since(now), self.grid.width_nanos);
        let recent = self.recent.load(Ordering::Relaxed);
        let (index, slot) = (recent >> SLOT_BITS, (recent & SLOT_MASK) as usize);
        // `index` was computed as some `nanos / width`, so `index * width` does not overflow.
        if nanos
            .checked_sub(index.wrapping_mul(width))
            .is_some_and(|into| into < width)
        {
            return Bucket { index, slot };
        }
        let index = nanos / width;
        let slot = index % self.slots.len() as u64;
        if index < 1 << (u64::BITS - SLOT_BITS) && slot <= SLOT_MASK {
            self.recent
                .store((index << SLOT_BITS) | slot, Ordering::Relaxed);
        }
        Bucket {
            index,
            slot: slot as usize,
        }
    }

    /// Counts one plain success permitted in the window of `epoch`, in `bucket` (see
    /// [`PlainCounts::bucket`]). `current` says whether that window is still the breaker's: it
    /// is asked before a word of another window is taken over, so a call whose window ended
    /// never writes into a newer one.
    #[inline]
    pub(crate) fn add(&self, epoch: u64, bucket: Bucket, current: impl Fn() -> bool) -> Added {
        let Some(slot) = self.slots.get(bucket.slot) else {
            return Added::Full;
        };
        let (tag, index) = (epoch & 0xFF, wrapped(bucket.index));
        let mut word = slot.load(Ordering::SeqCst);
        loop {
            let (word_tag, word_index, count) = unpack(word);
            let next = if word_tag == tag && word_index == index {
                if count == COUNT_MAX {
                    return Added::Full;
                }
                word + 1
            } else if word_tag == tag && (-self.grid.len()..0).contains(&age(index, word_index)) {
                // A newer bucket of this window holds the slot: the call is a whole window old.
                // (A word that only looks newer — more than 2^27 buckets old, its index wrapped
                // — is taken over like any other old one.)
                return Added::Dropped;
            } else if word_tag != tag && !current() {
                return Added::Dropped;
            } else {
                pack(tag, index, 1)
            };
            match slot.compare_exchange_weak(word, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Added::Counted,
                Err(actual) => word = actual,
            }
        }
    }

    /// The plain successes of the window of `epoch` as of `now`.
    pub(crate) fn sum(&self, epoch: u64, now: Instant) -> u32 {
        let (tag, head) = (epoch & 0xFF, wrapped(self.grid.index_of(now)));
        let len = self.grid.len();
        let total: u64 = self
            .slots
            .iter()
            .map(|slot| unpack(slot.load(Ordering::SeqCst)))
            .filter(|&(word_tag, index, _)| {
                // Within the window, or a bucket a moment newer than `now` (another thread
                // read the clock a little later).
                let age = age(head, index);
                word_tag == tag && age > -len && age < len
            })
            .map(|(_, _, count)| count)
            .sum();
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    /// Empties every bucket (under the lock, as a new window starts, before its epoch is
    /// published). A call of an earlier window that passed its epoch check just before may
    /// still write one word afterwards: that word carries the earlier window's tag. The new
    /// window holds no failure: no success can open it until one enters under the lock.
    pub(crate) fn clear(&self) {
        for slot in &self.slots {
            slot.store(0, Ordering::SeqCst);
        }
        self.settle(Quiet::Always);
    }

    /// Marks that a decision is being made (under the lock, before the plain successes are
    /// summed for it): until [`PlainCounts::settle`], every success decides under the lock.
    ///
    /// A success counts itself, then reads this word (both sequentially consistent). So a
    /// success either is in the sum this decision reads, or reads `Never` or a later word and
    /// comes to decide itself; a success missing from a decision's sum that reads the word
    /// this decision settles on is one more success, which that word already allows for.
    pub(crate) fn unsettle(&self) {
        self.quiet.store(QUIET_NEVER, Ordering::SeqCst);
    }

    /// Publishes what the decision found (under the lock).
    pub(crate) fn settle(&self, quiet: Quiet) {
        self.quiet.store(quiet.word(), Ordering::SeqCst);
    }

    /// Whether a plain success counted in bucket `index` cannot open the breaker, so need not
    /// decide under the lock.
    #[inline]
    pub(crate) fn is_quiet(&self, index: u64) -> bool {
        let word = self.quiet.load(Ordering::SeqCst);
        word == QUIET_ALWAYS || (word == index && word != QUIET_NEVER)
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
            SlidingWindow::time(Duration::from_secs(3_600)),
            SlidingWindow::Time {
                length: Duration::from_secs(3_600),
                buckets: 600
            },
            "at most 600 buckets"
        );
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

    fn plain(buckets: u32) -> (PlainCounts, Instant) {
        let t0 = Instant::now();
        let kind = SlidingWindow::Time {
            length: Duration::from_secs(u64::from(buckets)),
            buckets,
        };
        (PlainCounts::new(kind, t0).unwrap(), t0)
    }

    #[test]
    fn plain_counts_take_over_old_buckets_and_drop_what_a_newer_one_replaced() {
        let (p, t0) = plain(4);
        let s = Duration::from_secs;
        assert_eq!(p.add(1, p.bucket(t0), || true), Added::Counted);
        assert_eq!(p.add(1, p.bucket(t0 + s(1)), || true), Added::Counted);
        assert_eq!(p.sum(1, t0 + s(1)), 2);
        // Bucket 4 takes slot 0 over from bucket 0.
        assert_eq!(p.add(1, p.bucket(t0 + s(4)), || true), Added::Counted);
        assert_eq!(p.sum(1, t0 + s(4)), 2, "bucket 1 and bucket 4");
        // A call that read the clock at bucket 0 but counts now: older than the window.
        assert_eq!(p.add(1, p.bucket(t0), || true), Added::Dropped);
        assert_eq!(p.sum(1, t0 + s(4)), 2);
        assert_eq!(p.sum(1, t0 + s(9)), 0, "everything left");
    }

    #[test]
    fn plain_counts_of_another_window_are_neither_read_nor_overwritten_by_a_stale_call() {
        let (p, t0) = plain(4);
        assert_eq!(p.add(2, p.bucket(t0), || true), Added::Counted);
        assert_eq!(p.sum(1, t0), 0, "window 1 does not see window 2's count");
        // A call of window 1 whose window is over must not take the slot from window 2.
        assert_eq!(p.add(1, p.bucket(t0), || false), Added::Dropped);
        assert_eq!(p.sum(2, t0), 1);
        // A call of the current window takes over a word left by an earlier one.
        assert_eq!(p.add(3, p.bucket(t0), || true), Added::Counted);
        assert_eq!((p.sum(3, t0), p.sum(2, t0)), (1, 0));
    }

    #[test]
    fn a_full_bucket_sends_the_success_to_the_lock() {
        let (p, t0) = plain(2);
        p.slots[0].store(pack(7, 0, COUNT_MAX), Ordering::SeqCst);
        assert_eq!(p.add(7, p.bucket(t0), || true), Added::Full);
        assert_eq!(p.sum(7, t0), COUNT_MAX as u32);
        assert!(PlainCounts::new(SlidingWindow::Count(10), t0).is_none());
    }

    #[test]
    fn bucket_indexes_wrap_around_at_2_to_the_28() {
        let (p, t0) = plain(4);
        let last = INDEX_MASK as u32;
        // Buckets 2^28 - 2 and 2^28 - 1, then 2^28 (stored as 0) and 2^28 + 1 (stored as 1).
        p.slots[2].store(pack(5, last - 1, 10), Ordering::SeqCst);
        p.slots[3].store(pack(5, last, 20), Ordering::SeqCst);
        p.slots[0].store(pack(5, 0, 30), Ordering::SeqCst);
        assert_eq!((age(0, last), age(last, 0), age(1, last - 1)), (1, -1, 3));
        // `now` in bucket 2^28 + 1: all four are within the window of 4.
        let now = t0 + Duration::from_secs((1 << 28) + 1);
        assert_eq!(p.add(5, p.bucket(now), || true), Added::Counted);
        assert_eq!(p.sum(5, now), 61);
        // A call of bucket 2^28 - 1 (one the wrap made numerically larger) is older than
        // the 2^28 + 1 that now holds its slot: dropped, not counted there.
        p.slots[3].store(pack(5, 3, 1), Ordering::SeqCst);
        let old = t0 + Duration::from_secs((1 << 28) - 1);
        assert_eq!(p.add(5, p.bucket(old), || true), Added::Dropped);
        // Bucket 2^28 - 2 is five buckets older than 2^28 + 3: out of the window of 4.
        let later = t0 + Duration::from_secs((1 << 28) + 3);
        assert_eq!(p.sum(5, later), 30 + 1 + 1);
    }

    #[test]
    fn a_word_so_old_that_its_wrapped_index_looks_newer_is_taken_over() {
        let (p, t0) = plain(4);
        // Bucket 4 written, then nothing for 2^27 + 4 buckets: its wrapped age reads as
        // 4 - 2^27 — "newer" — although it is far older than the window.
        p.slots[0].store(pack(5, 4, 9), Ordering::SeqCst);
        let now = t0 + Duration::from_secs((1 << 27) + 8);
        assert_eq!(age(wrapped((1 << 27) + 8), 4), 4 - (1 << 27));
        assert_eq!(p.sum(5, now), 0, "not in the window");
        assert_eq!(p.add(5, p.bucket(now), || true), Added::Counted);
        assert_eq!(p.sum(5, now), 1);
    }

    #[test]
    fn the_remembered_bucket_is_used_only_when_the_time_falls_in_it() {
        let (p, t0) = plain(4);
        let at = |ms: u64| p.bucket(t0 + Duration::from_millis(ms));
        let expect = |index: u64| Bucket {
            index,
            slot: (index % 4) as usize,
        };
        assert_eq!(at(0), expect(0));
        p.recent.store(pack_hint(7, 3), Ordering::Relaxed); // a later bucket's
        assert_eq!(at(999), expect(0), "a hint that does not hold is not used");
        assert_eq!(at(999), expect(0));
        p.recent.store(pack_hint(0, 3), Ordering::Relaxed); // wrong slot: used as it is
        assert_eq!(
            at(500).slot,
            3,
            "the same bucket comes from the hint, not from a division"
        );
        p.recent.store(pack_hint(0, 0), Ordering::Relaxed);
        assert_eq!(at(1_000), expect(1), "the next bucket");
        assert_eq!(at(5_500), expect(5), "slot 1 again");
        assert_eq!(at(900), expect(0), "an older clock read");
        assert_eq!(at(5_999), expect(5));
        assert_eq!(p.recent.load(Ordering::Relaxed), pack_hint(5, 1));
        let before_origin = t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0);
        assert_eq!(p.bucket(before_origin), expect(0));
    }

    fn pack_hint(index: u64, slot: u64) -> u64 {
        (index << SLOT_BITS) | slot
    }

    #[test]
    fn a_bucket_past_2_to_the_44_is_found_but_not_remembered() {
        let t0 = Instant::now();
        let ns = SlidingWindow::Time {
            length: Duration::from_nanos(4),
            buckets: 4,
        };
        let p = PlainCounts::new(ns, t0).unwrap();
        let far = 1u64 << 44;
        let bucket = p.bucket(t0 + Duration::from_nanos(far + 1));
        assert_eq!((bucket.index, bucket.slot), (far + 1, 1));
        assert_eq!(p.recent.load(Ordering::Relaxed), 0, "not remembered");
        let near = p.bucket(t0 + Duration::from_nanos(6));
        assert_eq!((near.index, near.slot), (6, 2));
        assert_eq!(p.recent.load(Ordering::Relaxed), pack_hint(6, 2));
    }

    #[test]
    fn a_quiet_word_holds_for_its_bucket_only_and_a_decision_unsettles_it() {
        let (p, _) = plain(2);
        assert!(
            p.is_quiet(0) && p.is_quiet(7),
            "a new window holds no failure"
        );
        p.settle(Quiet::In(7));
        assert!(p.is_quiet(7) && !p.is_quiet(8) && !p.is_quiet(6));
        p.unsettle();
        assert!(!p.is_quiet(7));
        p.settle(Quiet::Never);
        assert!(!p.is_quiet(QUIET_NEVER) && !p.is_quiet(0));
        p.settle(Quiet::In(u64::MAX));
        assert!(
            !p.is_quiet(QUIET_NEVER),
            "no index is read as the Never word"
        );
        p.clear();
        assert!(p.is_quiet(3));
    }
}
