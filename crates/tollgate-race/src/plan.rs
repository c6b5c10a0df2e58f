//! What a trial works from and what it hands back, shared by the HTTP/1.1 trials
//! ([`crate::trial`]) and the HTTP/2 single-packet trial ([`crate::h2`]).

use std::time::{Duration, Instant};

use crate::config::SyncMode;
use crate::conn::Connector;
use crate::error::{ErrorKind, RequestError};
use crate::request::RequestTemplate;
use crate::response::Response;

/// What a run needs to execute trials, shared by its tasks.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) connector: Connector,
    pub(crate) request: RequestTemplate,
    pub(crate) requests: usize,
    pub(crate) sync: SyncMode,
    pub(crate) timeout: Duration,
}

/// How one request ended, and when.
#[derive(Debug)]
pub(crate) struct RequestOutcome {
    pub(crate) result: Result<Response, RequestError>,
    /// When the request became complete on the wire; `None` if it never did.
    pub(crate) released: Option<Instant>,
    /// When the response was complete or the request failed.
    pub(crate) ended: Instant,
}

impl RequestOutcome {
    /// A response complete now, to a request released at `released`.
    pub(crate) fn response(response: Response, released: Instant) -> Self {
        Self {
            result: Ok(response),
            released: Some(released),
            ended: Instant::now(),
        }
    }

    /// A failure now, of a request released at `released` (if it was).
    pub(crate) fn failed(error: RequestError, released: Option<Instant>) -> Self {
        Self {
            result: Err(error),
            released,
            ended: Instant::now(),
        }
    }

    /// The time from release to the complete response, for responses only.
    pub(crate) fn latency(&self) -> Option<Duration> {
        let released = self.released.filter(|_| self.result.is_ok())?;
        Some(self.ended.saturating_duration_since(released))
    }
}

/// Every request's outcome in index order, and the send spread: what a kind of trial
/// ([`crate::trial`] or [`crate::h2`]) hands back.
pub(crate) type Settled = (Vec<RequestOutcome>, Duration);

/// The raw result of one trial, in request-index order.
#[derive(Debug)]
pub(crate) struct TrialRun {
    pub(crate) outcomes: Vec<RequestOutcome>,
    /// Time between the first and the last release (final byte, or whole request for `none`).
    pub(crate) spread: Duration,
    /// When the trial started opening connections: the origin of its timeline.
    pub(crate) started: Instant,
}

impl TrialRun {
    /// The first failure when no request of the trial could even connect.
    pub(crate) fn unreachable(&self) -> Option<&RequestError> {
        let connect_failed = |o: &RequestOutcome| matches!(&o.result, Err(e) if matches!(e.kind, ErrorKind::Connect | ErrorKind::Tls));
        if !self.outcomes.iter().all(connect_failed) {
            return None;
        }
        self.outcomes.iter().find_map(|o| o.result.as_ref().err())
    }
}
