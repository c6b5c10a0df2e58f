//! The breaker's states, and their packing with the epoch into one atomic word.

use std::fmt;

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Calls flow; outcomes are recorded and may open the breaker.
    Closed,
    /// Calls are rejected until the wait in open has elapsed.
    Open,
    /// A fixed number of trial calls decides between closing and opening again.
    HalfOpen,
    /// Manual: every call is permitted and nothing is recorded.
    Disabled,
    /// Manual: every call is rejected until the breaker is reset.
    ForcedOpen,
    /// Manual: every call is permitted and recorded, but the state never changes by itself.
    MetricsOnly,
}

impl State {
    #[cfg(test)]
    const ALL: [State; 6] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Disabled,
        State::ForcedOpen,
        State::MetricsOnly,
    ];

    /// A stable lower-case name, used in metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
            State::MetricsOnly => "metrics_only",
        }
    }

    /// The value of the `tollgate_breaker_state` gauge for this state.
    pub fn code(self) -> u8 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::Disabled => 3,
            State::ForcedOpen => 4,
            State::MetricsOnly => 5,
        }
    }

    /// Whether a call in this state is let through without taking the breaker's lock.
    pub(crate) fn is_free_flowing(self) -> bool {
        matches!(self, State::Closed | State::MetricsOnly | State::Disabled)
    }

    /// Whether calls in this state are recorded in the closed window.
    pub(crate) fn is_windowed(self) -> bool {
        matches!(self, State::Closed | State::MetricsOnly)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The breaker's hot word: `epoch (29 bits) | state (3 bits) | calls (32 bits)`.
///
/// Read without a lock to permit a call; its state and epoch are written only under the
/// breaker's lock, on a transition. The call count of a count-based closed window is bumped
/// with a compare-and-swap that also checks the epoch, so a success is counted without any
/// lock, and never in a window other than the one it was permitted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

pub(crate) const EPOCH_MASK: u64 = (1 << 29) - 1;
const STATE_SHIFT: u32 = 32;
const EPOCH_SHIFT: u32 = 35;

impl Word {
    pub(crate) fn new(state: State, epoch: u64) -> Self {
        Word(((epoch & EPOCH_MASK) << EPOCH_SHIFT) | (u64::from(state.code()) << STATE_SHIFT))
    }

    /// The state packed in the word. A `match` rather than an index into an array of the
    /// states: the compiler sees it is the identity on the codes and decodes without a table
    /// load, which sat on the hot path of every call (`perf annotate`, session 14).
    #[inline]
    pub(crate) fn state(self) -> State {
        // Codes 0..=5 are the only ones ever packed; fall back to Closed defensively.
        match (self.0 >> STATE_SHIFT) & 0b111 {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::Disabled,
            4 => State::ForcedOpen,
            5 => State::MetricsOnly,
            _ => State::Closed,
        }
    }

    pub(crate) fn epoch(self) -> u64 {
        self.0 >> EPOCH_SHIFT
    }

    pub(crate) fn count(self) -> u32 {
        self.0 as u32
    }

    /// The same word with the call count set to `count`.
    pub(crate) fn with_count(self, count: u32) -> Word {
        Word((self.0 & !u64::from(u32::MAX)) | u64::from(count))
    }

    /// The same word with the call count moved one on (wrapping within its 32 bits).
    pub(crate) fn bumped(self) -> Word {
        self.with_count(self.count().wrapping_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips_every_state_and_epoch() {
        for state in State::ALL {
            for epoch in [0, 1, 7, EPOCH_MASK] {
                let word = Word::new(state, epoch);
                assert_eq!(
                    (word.state(), word.epoch(), word.count()),
                    (state, epoch, 0)
                );
                let bumped = word.bumped().bumped();
                assert_eq!(
                    (bumped.state(), bumped.epoch(), bumped.count()),
                    (state, epoch, 2)
                );
            }
            let full = Word(Word::new(state, 5).0 | u64::from(u32::MAX));
            let wrapped = full.bumped();
            assert_eq!(
                (wrapped.state(), wrapped.epoch(), wrapped.count()),
                (state, 5, 0)
            );
            assert_eq!(State::ALL[state.code() as usize], state);
        }
    }
}
