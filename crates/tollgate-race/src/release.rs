//! The release of the final bytes, the moment the whole tool exists for.
//!
//! Each final byte costs one `send` syscall (on loopback the kernel also runs the receiver's
//! TCP path inside it, several microseconds). A single loop over 100 sockets therefore takes
//! most of a millisecond, so the sockets are split into a few *lanes*, one OS thread each,
//! that start together on a spinning start line (a sleeping barrier would add a futex wake-up
//! to one lane's start) and write without ever yielding: the spread is bounded by syscalls,
//! not by task scheduling. A socket that is momentarily not writable is finished
//! asynchronously afterwards (and its late release shows in the measured spread).

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::conn::Stream;
use crate::error::{ErrorKind, RequestError};

/// Fewer requests than this per lane are not worth another thread.
const MIN_PER_LANE: usize = 16;
const MAX_LANES: usize = 4;

/// A connection whose request has been sent except for its final byte.
#[derive(Debug)]
pub(crate) struct Armed {
    pub(crate) index: usize,
    pub(crate) stream: Stream,
    pub(crate) last: u8,
}

/// A connection whose request is complete, and when its final byte was written.
#[derive(Debug)]
pub(crate) struct Released {
    pub(crate) index: usize,
    pub(crate) stream: Stream,
    pub(crate) at: Instant,
}

/// Writes every final byte; returns the released connections and the failed requests.
/// A request whose lane was lost (a panic) is absent from both.
pub(crate) async fn release(armed: Vec<Armed>) -> (Vec<Released>, Vec<(usize, RequestError)>) {
    let lanes = lane_count(armed.len());
    let start = Arc::new(StartLine(AtomicUsize::new(lanes)));
    let mut split: Vec<Vec<Armed>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, a) in armed.into_iter().enumerate() {
        split[i % lanes].push(a);
    }
    let handles: Vec<_> = split
        .into_iter()
        .map(|lane| {
            let start = Arc::clone(&start);
            tokio::task::spawn_blocking(move || {
                start.wait();
                lane.into_iter().map(fire).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut released = Vec::new();
    let mut failed = Vec::new();
    for handle in handles {
        for (mut armed, sent, at) in handle.await.unwrap_or_default() {
            let sent = match sent {
                Ok(true) => Ok(at),
                Ok(false) => armed
                    .stream
                    .finish_byte(armed.last)
                    .await
                    .map(|()| Instant::now()),
                Err(e) => Err(e),
            };
            match sent {
                Ok(at) => released.push(Released {
                    index: armed.index,
                    stream: armed.stream,
                    at,
                }),
                Err(e) => failed.push((armed.index, RequestError::io(&e))),
            }
        }
    }
    (released, failed)
}

/// A barrier that spins: every lane leaves within nanoseconds of the last arrival.
#[derive(Debug)]
struct StartLine(AtomicUsize);

impl StartLine {
    fn wait(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        let mut spins = 0u32;
        while self.0.load(Ordering::Acquire) != 0 {
            // A lane not yet scheduled must not be starved by the ones waiting for it.
            if spins < 10_000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

type Fired = (Armed, std::io::Result<bool>, Instant);

fn fire(mut armed: Armed) -> Fired {
    let sent = armed.stream.write_byte_now(armed.last);
    (armed, sent, Instant::now())
}

/// Half the cores at most: the other half is left to the target, which on loopback starts
/// working on the first requests while the last ones are released. On a loaded 2-core
/// machine two lanes measured twice the spread of one (a descheduled lane stalls the release).
fn lane_count(requests: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    (cores / 2)
        .min(MAX_LANES)
        .min(requests.div_ceil(MIN_PER_LANE))
        .max(1)
}

/// Used when a lane task itself failed, so that its requests are reported, not dropped.
pub(crate) fn lost() -> RequestError {
    RequestError::new(ErrorKind::Io, "the release thread failed")
}
