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
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `epoch << 3 | state`: read without a lock on the hot path, written only under the lock.
/// The epoch increases on every transition, so an outcome can be matched to the state it was
/// permitted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) fn new(state: State, epoch: u64) -> Self {
        Word((epoch << 3) | u64::from(state.code()))
    }

    pub(crate) fn state(self) -> State {
        // Codes 0..=5 are the only ones ever packed; fall back to Closed defensively.
        State::ALL
            .get((self.0 & 0b111) as usize)
            .copied()
            .unwrap_or(State::Closed)
    }

    pub(crate) fn epoch(self) -> u64 {
        self.0 >> 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips_every_state_and_epoch() {
        for state in State::ALL {
            for epoch in [0, 1, 7, u64::MAX >> 3] {
                let word = Word::new(state, epoch);
                assert_eq!((word.state(), word.epoch()), (state, epoch));
            }
            assert_eq!(State::ALL[state.code() as usize], state);
        }
    }
}
