//! Helpers for the flight, keyed and scenario tests, included with `#[path]`.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use tokio::sync::{Barrier, oneshot, watch};
use tokio::task::JoinHandle;

/// Polls `fut` exactly once: afterwards a `Flight::run` caller is registered (led or joined).
pub async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Spawns `n` tasks, task `i` running `make(i)`, all released together by a start gate.
pub fn spawn_gated<Fut>(n: usize, make: impl FnMut(usize) -> Fut) -> Vec<JoinHandle<Fut::Output>>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let start = Arc::new(Barrier::new(n));
    (0..n)
        .map(make)
        .map(|fut| {
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                fut.await
            })
        })
        .collect()
}

/// Like [`spawn_gated`], but each task polls its future once (registering it as a leader,
/// joiner or waiter) and pauses; returns once all `n` are registered, and they run on.
pub async fn spawn_registered<Fut>(
    n: usize,
    make: impl FnMut(usize) -> Fut,
) -> Vec<JoinHandle<Fut::Output>>
where
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let registered = Arc::new(Barrier::new(n + 1));
    let reg = Arc::clone(&registered);
    let mut make = make;
    let tasks = spawn_gated(n, move |i| {
        let (fut, registered) = (make(i), Arc::clone(&reg));
        async move {
            let mut fut = std::pin::pin!(fut);
            let first = poll_once(fut.as_mut()).await;
            assert!(first.is_pending(), "finished before it was registered");
            registered.wait().await;
            fut.await
        }
    });
    registered.wait().await;
    tasks
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

/// The flight of the flight tests: string keys, numbers, string errors.
pub type Shared = tollgate::flight::Flight<&'static str, u64, String>;

/// Spawns `n` joiners of `"k"` (their own closure panics if it runs) that are registered when
/// this returns.
pub async fn joiners(
    flight: &Shared,
    n: usize,
) -> Vec<JoinHandle<tollgate::flight::Outcome<u64, String>>> {
    spawn_registered(n, |_| {
        let flight = flight.clone();
        async move {
            flight
                .run("k", || async { panic!("a joiner's closure ran") })
                .await
        }
    })
    .await
}

/// Like [`gated`] with `Ok(1)`, and sends on `dropped` when the work's future is dropped
/// whether it had finished (`false`: dropped or aborted while waiting on the gate).
pub fn probed(
    runs: &Counter,
    gate: &Gate,
    dropped: oneshot::Sender<bool>,
) -> impl Future<Output = Result<u64, String>> + Send + 'static {
    let (runs, gate) = (runs.clone(), gate.clone());
    async move {
        let mut probe = DropProbe(Some(dropped), false);
        runs.hit();
        gate.wait().await;
        probe.1 = true;
        Ok(1)
    }
}

/// Signals when the work's future is dropped, and whether it had finished (`.1`, set by the
/// work as its last step).
struct DropProbe(Option<oneshot::Sender<bool>>, bool);

impl Drop for DropProbe {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(self.1);
        }
    }
}
