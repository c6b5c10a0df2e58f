//! One trial: open, send, release, read. This is where the synchronisation happens.
//!
//! With [`SyncMode::LastByte`] every connection is opened and every request written except
//! its final byte, concurrently; then the final bytes are written back to back (see
//! [`crate::release`]). With [`SyncMode::None`] each request is connected
//! and sent whole by its own task, as a plain concurrent client would. With
//! [`SyncMode::SinglePacket`] the trial is handed to [`crate::h2`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::config::SyncMode;
use crate::conn::Stream;
use crate::error::{ErrorKind, RequestError};
use crate::io::{send, within};
use crate::plan::{Plan, RequestOutcome, Settled, TrialRun};
use crate::release::{Armed, lost, release};
use crate::response::read_response;
use crate::template::{Vars, uuid_v4};

pub(crate) async fn run_trial(plan: &Arc<Plan>, trial: usize) -> TrialRun {
    let started = Instant::now();
    let trial_uuid = uuid_v4();
    let vars = |index| Vars {
        index,
        trial,
        trial_uuid: &trial_uuid,
    };
    let requests = (0..plan.requests).map(|i| plan.request.render(vars(i)));
    let (outcomes, spread) = match plan.sync {
        SyncMode::LastByte => last_byte(plan, requests.collect()).await,
        SyncMode::None => plain(plan, requests.collect()).await,
        SyncMode::SinglePacket => {
            let parts = (0..plan.requests).map(|i| plan.request.parts(vars(i)));
            crate::h2::single_packet(plan, parts.collect()).await
        }
    };
    TrialRun {
        outcomes,
        spread,
        started,
    }
}

async fn last_byte(plan: &Arc<Plan>, requests: Vec<Vec<u8>>) -> Settled {
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
    let mut outcomes: Vec<Option<RequestOutcome>> = Vec::with_capacity(opening.len());
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
            Err(e) => outcomes.push(Some(RequestOutcome::failed(e, None))),
        }
    }

    let (released, failed) = release(ready).await;
    for (index, e) in failed {
        outcomes[index] = Some(RequestOutcome::failed(e, None));
    }
    let spread = spread(released.iter().map(|r| r.at));
    let release_times: Vec<_> = released.iter().map(|r| Some(r.at)).collect();

    let reading: Vec<_> = released
        .into_iter()
        .map(|r| {
            let reader = receive(Arc::clone(plan), r.stream, r.at);
            (r.index, tokio::spawn(reader))
        })
        .collect();
    for ((index, handle), at) in reading.into_iter().zip(release_times) {
        let outcome = handle.await;
        outcomes[index] =
            Some(outcome.unwrap_or_else(|e| RequestOutcome::failed(task_failed(&e), at)));
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| RequestOutcome::failed(lost(), None)))
        .collect();
    (outcomes, spread)
}

async fn plain(plan: &Arc<Plan>, requests: Vec<Vec<u8>>) -> Settled {
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
                match sent.await {
                    Ok((stream, at)) => receive(plan, stream, at).await,
                    Err(e) => RequestOutcome::failed(e, None),
                }
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        let outcome = handle.await;
        outcomes.push(outcome.unwrap_or_else(|e| RequestOutcome::failed(task_failed(&e), None)));
    }
    let spread = spread(outcomes.iter().filter_map(|o| o.released));
    (outcomes, spread)
}

async fn receive(plan: Arc<Plan>, mut stream: Stream, released: Instant) -> RequestOutcome {
    let head = plan.request.is_head;
    let response = within(plan.timeout, "waiting for the response", async {
        read_response(&mut stream, head).await
    });
    match response.await {
        Ok(response) => RequestOutcome::response(response, released),
        Err(e) => RequestOutcome::failed(e, Some(released)),
    }
}

fn task_failed(e: &tokio::task::JoinError) -> RequestError {
    RequestError::new(ErrorKind::Io, format!("request task failed: {e}"))
}

fn joined<T>(
    result: Result<Result<T, RequestError>, tokio::task::JoinError>,
) -> Result<T, RequestError> {
    result.unwrap_or_else(|e| Err(task_failed(&e)))
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
