//! The time source used by time-dependent primitives.
//!
//! Every primitive reads time through a [`Clock`], never from the system directly, so tests can
//! either pause tokio's clock ([`Clock::Tokio`] follows `tokio::time::pause`/`advance`) or drive a
//! [`ManualClock`] by hand. No primitive starts a timer thread: time-based transitions are decided
//! when the next call arrives.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Where a primitive reads the current time from.
#[derive(Clone, Default)]
pub enum Clock {
    /// `tokio::time::Instant::now()`: real time, or tokio's paused test clock when paused.
    #[default]
    Tokio,
    /// A clock that only moves when told to.
    Manual(ManualClock),
    /// The kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE` on Linux, read through
    /// libc, so programs using it run under valgrind): a read costs a fraction of a precise one
    /// (measured: 7.6 ns against 31–43 ns on this project's VMs), but time advances in steps of
    /// the kernel tick (1–4 ms). For high-rate breakers with a time window whose buckets and
    /// slow-call thresholds are far longer than a tick; it does not follow
    /// `tokio::time::pause` (tests use [`Clock::Manual`]). Elsewhere than Linux it is
    /// [`Clock::Tokio`].
    Coarse,
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> Instant {
        match self {
            Clock::Tokio => Instant::now(),
            Clock::Manual(manual) => manual.now(),
            Clock::Coarse => coarse::now(),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clock::Tokio => f.write_str("Clock::Tokio"),
            Clock::Coarse => f.write_str("Clock::Coarse"),
            Clock::Manual(m) => f.debug_tuple("Clock::Manual").field(&m.elapsed()).finish(),
        }
    }
}

/// [`Clock::Coarse`]: the coarse clock's readings, placed on tokio's timeline by one precise
/// reading taken at the first use.
mod coarse {
    use std::sync::OnceLock;
    use std::time::Duration;

    use tokio::time::Instant;

    #[cfg(target_os = "linux")]
    fn read() -> Duration {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
        let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
        Duration::new(secs, nanos)
    }

    /// The current instant of the coarse clock.
    #[cfg(target_os = "linux")]
    pub(super) fn now() -> Instant {
        static ORIGIN: OnceLock<(Instant, Duration)> = OnceLock::new();
        let (at, read_at) = *ORIGIN.get_or_init(|| (Instant::now(), read()));
        at + read().saturating_sub(read_at)
    }

    /// The current instant (no coarse clock here).
    #[cfg(not(target_os = "linux"))]
    pub(super) fn now() -> Instant {
        Instant::now()
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Clock::Manual(manual)
    }
}

/// A clock that starts at the instant it was created and moves only by [`ManualClock::advance`].
///
/// Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    origin: Instant,
    offset_nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock frozen at the current instant.
    pub fn new() -> Self {
        ManualClock {
            origin: Instant::now(),
            offset_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The current instant of this clock.
    pub fn now(&self) -> Instant {
        self.origin + self.elapsed()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_time() {
        let clock = ManualClock::new();
        let shared = clock.clone();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        shared.advance(Duration::from_millis(250));
        assert_eq!(clock.now() - start, Duration::from_millis(250));
        assert_eq!(Clock::from(clock).now() - start, Duration::from_millis(250));
    }

    /// The coarse clock never goes back, keeps within a few kernel ticks of the precise one,
    /// and advances.
    #[test]
    fn coarse_clock_is_monotonic_close_to_the_precise_clock_and_advances() {
        let tolerance = Duration::from_millis(20);
        let first = Clock::Coarse.now();
        let mut last = first;
        let deadline = Instant::now() + Duration::from_secs(5);
        while last == first && Instant::now() < deadline {
            let (coarse, precise) = (Clock::Coarse.now(), Instant::now());
            assert!(coarse >= last, "went back");
            let gap = if coarse > precise {
                coarse - precise
            } else {
                precise - coarse
            };
            assert!(gap <= tolerance, "{gap:?} from the precise clock");
            last = coarse;
        }
        assert!(last > first, "the coarse clock advanced");
    }
}
