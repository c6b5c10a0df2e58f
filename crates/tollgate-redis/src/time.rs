//! [`ManualTime`]: the test hook that stands in for the server's clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tollgate::store::Timestamp;

/// **A test hook**: a store time that moves only when told, shared by every handle given a
/// clone (see [`Builder::manual_time`](crate::Builder::manual_time)).
///
/// A server's clock cannot be moved, and it keeps running between two calls of a test, so a
/// case that checks a lease "1 ms before it runs out" cannot be exact on it. With a manual
/// time every script takes its `now` from here instead of `TIME`. Key expiry on the server
/// stays relative (`PEXPIRE`), on the server's real clock. Production stores never set it:
/// it makes the caller's value the store's time, which is exactly what the store otherwise
/// refuses to trust.
#[derive(Clone, Debug)]
pub struct ManualTime(Arc<AtomicU64>);

impl ManualTime {
    /// A time starting at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualTime(Arc::new(AtomicU64::new(start.0)))
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}
