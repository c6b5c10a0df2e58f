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
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> Instant {
        match self {
            Clock::Tokio => Instant::now(),
            Clock::Manual(manual) => manual.now(),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clock::Tokio => f.write_str("Clock::Tokio"),
            Clock::Manual(m) => f.debug_tuple("Clock::Manual").field(&m.elapsed()).finish(),
        }
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
}
