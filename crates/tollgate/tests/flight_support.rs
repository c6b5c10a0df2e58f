//! Helpers for the flight, keyed and scenario tests, included with `#[path]` (this file also
//! builds as an empty test target).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use tokio::sync::watch;

/// Polls `fut` exactly once: afterwards a `Flight::run` caller is registered (led or joined).
pub async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// A gate that work waits behind until the test opens it; opening is never lost.
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate(Arc::new(watch::Sender::new(false)))
    }

    /// Opens the gate for every current and future waiter.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Closes the gate again, for waiters that arrive from now on.
    pub fn close(&self) {
        self.0.send_replace(false);
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// Counts how many times something ran.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// Records one run; returns the new total.
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Runs so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Work that counts its execution, waits for `gate`, then returns `result`.
pub fn gated<T, E>(
    runs: &Counter,
    gate: &Gate,
    result: Result<T, E>,
) -> impl Future<Output = Result<T, E>> + Send + 'static
where
    T: Send + 'static,
    E: Send + 'static,
{
    let (runs, gate) = (runs.clone(), gate.clone());
    async move {
        runs.hit();
        gate.wait().await;
        result
    }
}
