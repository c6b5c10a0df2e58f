//! What a trial works from and what it hands back, shared by the HTTP/1.1 trials
//! ([`crate::trial`]) and the HTTP/2 single-packet trial ([`crate::h2`]).

use std::time::Duration;

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

/// A response and the time from its release to its last byte.
#[derive(Debug)]
pub(crate) struct Timed {
    pub(crate) response: Response,
    pub(crate) latency: Duration,
}

pub(crate) type Outcome = Result<Timed, RequestError>;

/// The raw result of one trial, in request-index order.
#[derive(Debug)]
pub(crate) struct TrialRun {
    pub(crate) outcomes: Vec<Outcome>,
    /// Time between the first and the last release (final byte, or whole request for `none`).
    pub(crate) spread: Duration,
}

impl TrialRun {
    /// The first failure when no request of the trial could even connect.
    pub(crate) fn unreachable(&self) -> Option<&RequestError> {
        let connect_failed = |o: &Outcome| matches!(o, Err(e) if matches!(e.kind, ErrorKind::Connect | ErrorKind::Tls));
        if !self.outcomes.iter().all(connect_failed) {
            return None;
        }
        self.outcomes.iter().find_map(|o| o.as_ref().err())
    }
}
