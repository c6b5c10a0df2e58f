//! # tollgate-tower
//!
//! tower middleware over tollgate's primitives.
#![forbid(unsafe_code)]

pub mod breaker;
pub mod bulkhead;
pub mod idempotency;
mod response;

use std::future::Future;
use std::pin::Pin;

/// The response future of this crate's services: boxed, because the guards they hold (a
/// breaker [`Permit`](tollgate::breaker::Permit), a bulkhead slot, an exactly-once claim)
/// borrow the primitive the future also owns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The clone-and-swap of tower middleware: the service that was driven ready goes into the
/// response future, a fresh clone stays behind for the next `poll_ready`.
pub(crate) fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    std::mem::replace(service, clone)
}
