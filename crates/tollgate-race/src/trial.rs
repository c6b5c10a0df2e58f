//! One trial: open, send, release, read. This is where the synchronisation happens.
//!
//! With [`SyncMode::LastByte`] every connection is opened and every request written except
//! its final byte, concurrently; then the final bytes are written back to back (see
//! [`crate::release`]). With [`SyncMode::None`] each request is connected
//! and sent whole by its own task, as a plain concurrent client would. With
//! [`SyncMode::SinglePacket`] the trial is handed to [`crate::h2`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::config::SyncMode;
use crate::conn::{Connector, Stream};
use crate::error::{ErrorKind, RequestError};
use crate::release::{Armed, lost, release};
use crate::request::RequestTemplate;
use crate::response::{Response, read_response};
use crate::template::{Vars, uuid_v4};

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

pub(crate) async fn run_trial(plan: &Arc<Plan>, trial: usize) -> TrialRun {
    let trial_uuid = uuid_v4();
    let vars = |index| Vars {
        index,
        trial,
        trial_uuid: &trial_uuid,
    };
    let requests = (0..plan.requests).map(|i| plan.request.render(vars(i)));
    match plan.sync {
        SyncMode::LastByte => last_byte(plan, requests.collect()).await,
        SyncMode::None => plain(plan, requests.collect()).await,
        SyncMode::SinglePacket => {
            let parts = (0..plan.requests).map(|i| plan.request.parts(vars(i)));
            crate::h2::single_packet(plan, parts.collect()).await
        }
    }
}

async fn last_byte(plan: &Arc<Plan>, requests: Vec<Vec<u8>>) -> TrialRun {
    let opening: Vec<JoinHandle<_>> = requests
        .into_iter()
        .map(|mut bytes| {
            let plan = Arc::clone(plan);
            tokio::spawn(async move {
                let last = bytes.pop().unwrap_or(b'\n');
                let stream = within(plan.timeout, "connecting", async {
                    let mut stream = plan.connector.connect().await?;
                    send(&mut stream, &bytes).await?;
                    Ok(stream)
                });
                Ok((stream.await?, last))
            })
        })
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(opening.len());
    let mut ready = Vec::with_capacity(opening.len());
    for (index, handle) in opening.into_iter().enumerate() {
        match joined(handle.await) {
            Ok((stream, last)) => {
                ready.push(Armed {
                    index,
                    stream,
                    last,
                });
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(Err(e))),
        }
    }

    let (released, failed) = release(ready).await;
    for (index, e) in failed {
        outcomes[index] = Some(Err(e));
    }
    let spread = spread(released.iter().map(|r| r.at));

    let reading: Vec<_> = released
        .into_iter()
        .map(|r| {
            let reader = receive(Arc::clone(plan), r.stream, r.at);
            (r.index, tokio::spawn(reader))
        })
        .collect();
    for (index, handle) in reading {
        outcomes[index] = Some(joined(handle.await));
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(lost())))
        .collect();
    TrialRun { outcomes, spread }
}

async fn plain(plan: &Arc<Plan>, requests: Vec<Vec<u8>>) -> TrialRun {
    let handles: Vec<JoinHandle<_>> = requests
        .into_iter()
        .map(|bytes| {
            let plan = Arc::clone(plan);
            tokio::spawn(async move {
                let sent = within(plan.timeout, "connecting", async {
                    let mut stream = plan.connector.connect().await?;
                    send(&mut stream, &bytes).await?;
                    Ok((stream, Instant::now()))
                });
                let (stream, at) = sent.await?;
                Ok((at, receive(plan, stream, at).await))
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(handles.len());
    let mut sent_at = Vec::with_capacity(handles.len());
    for handle in handles {
        match joined(handle.await) {
            Ok((at, outcome)) => {
                sent_at.push(at);
                outcomes.push(outcome);
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    let spread = spread(sent_at.into_iter());
    TrialRun { outcomes, spread }
}

pub(crate) async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
) -> Result<(), RequestError> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| RequestError::io(&e))?;
    stream.flush().await.map_err(|e| RequestError::io(&e))
}

async fn receive(plan: Arc<Plan>, mut stream: Stream, released: Instant) -> Outcome {
    let head = plan.request.is_head;
    let response = within(plan.timeout, "waiting for the response", async {
        read_response(&mut stream, head).await
    });
    let response = response.await?;
    Ok(Timed {
        response,
        latency: released.elapsed(),
    })
}

pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, RequestError> {
    timeout(limit, work).await.unwrap_or_else(|_| {
        Err(RequestError::new(
            ErrorKind::Timeout,
            format!("no progress within {limit:?} while {what}"),
        ))
    })
}

fn joined<T>(
    result: Result<Result<T, RequestError>, tokio::task::JoinError>,
) -> Result<T, RequestError> {
    result.unwrap_or_else(|e| {
        Err(RequestError::new(
            ErrorKind::Io,
            format!("request task failed: {e}"),
        ))
    })
}

fn spread(instants: impl Iterator<Item = Instant>) -> Duration {
    let (first, last) = instants.fold((None::<Instant>, None::<Instant>), |(lo, hi), at| {
        (
            Some(lo.map_or(at, |lo| lo.min(at))),
            Some(hi.map_or(at, |hi| hi.max(at))),
        )
    });
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    }
}
