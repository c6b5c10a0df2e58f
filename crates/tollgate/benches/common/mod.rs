//! Helpers shared by the benchmarks: the measured operation and a way to poll a future without
//! a runtime's scheduling in the measurement.
#![allow(dead_code)] // each bench uses a subset

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The guarded operation: a non-inlined function returning `Ok`.
#[inline(never)]
pub(crate) fn op(x: u64) -> Result<u64, ()> {
    Ok(x)
}

/// Polls a future that is ready on its first poll.
pub(crate) fn poll_ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("benchmarked futures are ready at once"),
    }
}

/// Polls a future until it is ready (it must wake itself).
pub(crate) fn poll_until_ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
