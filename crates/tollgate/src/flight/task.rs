//! The shared execution: a spawned task that is owned by no caller.
//!
//! The work runs in its own tokio task, so dropping any caller (the leader included) never
//! cancels it. Whatever way the task ends — a value, an error, a panic, an abort, or the
//! runtime shutting down — [`Finish`] publishes exactly one result and removes the call's map
//! entry, so no entry outlives its execution.

use std::future::Future;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::Inner;
use super::error::{Error, panic_message};

pub(crate) type Shared<T, E> = Result<T, Error<E>>;

/// One in-flight execution: where its result is published, and how to stop it.
pub(crate) struct Call<T, E> {
    pub(crate) result: watch::Sender<Option<Shared<T, E>>>,
    pub(crate) abort: OnceLock<AbortHandle>,
}

impl<T, E> Call<T, E> {
    pub(crate) fn new() -> Self {
        Call {
            result: watch::Sender::new(None),
            abort: OnceLock::new(),
        }
    }

    /// Waits for the published result.
    pub(crate) async fn wait(&self) -> Shared<T, E>
    where
        T: Clone,
        E: Clone,
    {
        let mut rx = self.result.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(published) => published.clone().unwrap_or(Err(Error::Aborted)),
            // Unreachable while the caller holds the call (it owns the sender); kept total.
            Err(_) => Err(Error::Aborted),
        }
    }
}

/// Publishes a result and retires the call: cache first, then the map entry, then the waiters,
/// so a caller that sees the result also sees the entry gone.
pub(crate) fn complete<K, T, E>(
    inner: &Inner<K, T, E>,
    key: &K,
    call: &Arc<Call<T, E>>,
    result: Shared<T, E>,
) where
    K: Hash + Eq + Clone,
    T: Clone,
    E: Clone,
{
    if let Some(cache) = &inner.cache {
        cache.put(key.clone(), &result);
    }
    inner.calls.remove(key, call);
    call.result.send_replace(Some(result));
}

/// Runs `work` as the call's task and records how to abort it.
pub(crate) fn spawn<K, T, E, Fut>(
    inner: Arc<Inner<K, T, E>>,
    key: K,
    call: Arc<Call<T, E>>,
    work: Fut,
) where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let finish = Finish {
        inner,
        key,
        call: Arc::clone(&call),
        done: false,
    };
    let handle = tokio::spawn(drive(finish, work));
    // Set once, by the only leader of this call.
    let _ = call.abort.set(handle.abort_handle());
}

async fn drive<K, T, E, Fut>(mut finish: Finish<K, T, E>, work: Fut)
where
    K: Hash + Eq + Clone,
    T: Clone,
    E: Clone,
    Fut: Future<Output = Result<T, E>>,
{
    let result = match (CatchUnwind {
        work: Box::pin(work),
    })
    .await
    {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Error::Failed(error)),
        Err(message) => {
            tracing::warn!(panic = %message, "flight: shared execution panicked");
            Err(Error::Panicked(message))
        }
    };
    finish.done = true;
    complete(&finish.inner, &finish.key, &finish.call, result);
}

/// Completes the call as aborted if the task is dropped before it finished.
struct Finish<K: Hash + Eq + Clone, T: Clone, E: Clone> {
    inner: Arc<Inner<K, T, E>>,
    key: K,
    call: Arc<Call<T, E>>,
    done: bool,
}

impl<K: Hash + Eq + Clone, T: Clone, E: Clone> Drop for Finish<K, T, E> {
    fn drop(&mut self) {
        if !self.done {
            tracing::debug!("flight: shared execution aborted");
            complete(&self.inner, &self.key, &self.call, Err(Error::Aborted));
        }
    }
}

/// Turns a panic while polling the work into an `Err(message)`.
struct CatchUnwind<F> {
    work: Pin<Box<F>>,
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let work = self.get_mut().work.as_mut();
        match catch_unwind(AssertUnwindSafe(|| work.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}
