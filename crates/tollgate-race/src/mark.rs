//! One request on a trial's timeline: when it was released and when it ended, and how.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::ErrorKind;
use crate::plan::RequestOutcome;

/// When one request of a trial was released and when it ended, in microseconds from the start
/// of the trial (the moment it began opening connections). Collected when
/// [`RaceConfig::timeline`](crate::RaceConfig::timeline) is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct RequestMark {
    /// The request's index within its trial.
    pub index: usize,
    /// When its final byte (or, with `none`, its whole request) was written; `None` when it
    /// never was (the connection failed first).
    pub released_us: Option<u64>,
    /// When its response was complete, or when it failed.
    pub ended_us: u64,
    /// The response's status, when there was a response.
    pub status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<ErrorKind>,
}

impl RequestMark {
    /// A request that got a response with `status`.
    pub fn response(index: usize, released_us: u64, ended_us: u64, status: u16) -> Self {
        Self {
            index,
            released_us: Some(released_us),
            ended_us,
            status: Some(status),
            error: None,
        }
    }

    /// A request that failed with `error`, released at `released_us` if it was.
    pub fn failed(index: usize, released_us: Option<u64>, ended_us: u64, error: ErrorKind) -> Self {
        Self {
            index,
            released_us,
            ended_us,
            status: None,
            error: Some(error),
        }
    }

    /// The request's mark in a trial that started at `origin`.
    pub(crate) fn of(index: usize, outcome: &RequestOutcome, origin: Instant) -> Self {
        let since = |at: Instant| micros(at.saturating_duration_since(origin));
        let released = outcome.released.map(since);
        let ended = since(outcome.ended);
        let (status, error) = match &outcome.result {
            Ok(response) => (Some(response.status), None),
            Err(e) => (None, Some(e.kind)),
        };
        Self {
            index,
            released_us: released,
            ended_us: ended,
            status,
            error,
        }
    }
}

/// Whole microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RequestError;
    use crate::response::Response;

    #[test]
    fn marks_are_relative_to_the_trial_start() {
        let origin = Instant::now();
        let at = |us| origin + Duration::from_micros(us);
        let ok = RequestOutcome {
            result: Ok(Response {
                status: 201,
                body: Vec::new(),
            }),
            released: Some(at(1_500)),
            ended: at(21_500),
        };
        assert_eq!(
            RequestMark::of(3, &ok, origin),
            RequestMark::response(3, 1_500, 21_500, 201)
        );
        let refused = RequestOutcome {
            result: Err(RequestError::new(ErrorKind::Connect, "refused")),
            released: None,
            ended: at(700),
        };
        assert_eq!(
            RequestMark::of(4, &refused, origin),
            RequestMark::failed(4, None, 700, ErrorKind::Connect)
        );
    }
}
