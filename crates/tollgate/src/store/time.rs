//! Time as a store sees it: wall-clock [`Timestamp`]s, read from a [`Timeline`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::clock::Clock;

/// A wall-clock instant in milliseconds since the Unix epoch: comparable across processes that
/// share a store (unlike `Instant`). Always the **store's** time: callers pass durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The system's current time.
    pub fn system_now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// This instant moved forward by `by` (saturating).
    #[must_use]
    pub fn plus(self, by: Duration) -> Self {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }
}

/// Where an in-process or embedded store reads its own time.
///
/// [`Timeline::system`] is the host's wall clock: every process on the host reads the same
/// time, so they agree on leases. [`Timeline::from_clock`] follows a
/// [`Clock`] from a wall-clock origin taken when it is made, so tests move a store's time with
/// tokio's paused clock or a [`ManualClock`](crate::clock::ManualClock). Clones share the time.
#[derive(Clone, Debug)]
pub struct Timeline(Source);

#[derive(Clone, Debug)]
enum Source {
    System,
    Clock {
        clock: Clock,
        origin: Instant,
        wall_origin: Timestamp,
    },
}

impl Timeline {
    /// The host's wall clock.
    pub fn system() -> Self {
        Timeline(Source::System)
    }

    /// Wall-clock time now, moved on by `clock` from here on.
    pub fn from_clock(clock: Clock) -> Self {
        Timeline(Source::Clock {
            origin: clock.now(),
            wall_origin: Timestamp::system_now(),
            clock,
        })
    }

    /// The current time on this timeline.
    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Source::System => Timestamp::system_now(),
            Source::Clock {
                clock,
                origin,
                wall_origin,
            } => wall_origin.plus(clock.now().saturating_duration_since(*origin)),
        }
    }
}

impl Default for Timeline {
    /// [`Timeline::system`].
    fn default() -> Self {
        Timeline::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn timestamps_add_saturating() {
        assert_eq!(Timestamp(5).plus(Duration::from_millis(7)), Timestamp(12));
        assert_eq!(Timestamp(u64::MAX).plus(Duration::from_secs(1)).0, u64::MAX);
    }

    #[test]
    fn a_clock_timeline_moves_exactly_with_its_clock() {
        let clock = ManualClock::new();
        let timeline = Timeline::from_clock(clock.clone().into());
        let start = timeline.now();
        assert_eq!(timeline.clone().now(), start);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(timeline.now(), start.plus(Duration::from_millis(1_500)));
    }
}
