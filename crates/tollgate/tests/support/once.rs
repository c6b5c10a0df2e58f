//! Helpers for the once tests, included with `#[path]`.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;
use tollgate::once::{Failure, Fingerprint, Key};

/// The key and fingerprint most tests use.
pub fn report() -> (Key, Fingerprint) {
    (
        Key::new("daily-report", "user-1/2026-11-21"),
        Fingerprint::new("letters"),
    )
}

/// The future a [`PaidApi`] call returns.
pub type Work<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, Failure<String>>> + Send>>;

/// A dummy paid API: counts its calls and answers once its gate is open.
#[derive(Clone, Debug)]
pub struct PaidApi {
    calls: Arc<AtomicUsize>,
    open: Arc<watch::Sender<bool>>,
    started: Arc<watch::Sender<usize>>,
}

impl PaidApi {
    /// An API whose gate is open: it answers at once.
    pub fn open() -> Self {
        let api = Self::closed();
        api.release();
        api
    }

    /// An API that holds every call until [`PaidApi::release`].
    pub fn closed() -> Self {
        PaidApi {
            calls: Arc::new(AtomicUsize::new(0)),
            open: Arc::new(watch::Sender::new(false)),
            started: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Lets every held and future call answer.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Waits until `n` calls have started.
    pub async fn started(&self, n: usize) {
        let _ = self.started.subscribe().wait_for(|s| *s >= n).await;
    }

    /// The work for `Once::run`: answers `answer` once released.
    pub fn call<T: Send + 'static>(
        &self,
        answer: Result<T, Failure<String>>,
    ) -> impl FnOnce() -> Work<T> + Send + 'static {
        let api = self.clone();
        move || {
            Box::pin(async move {
                api.calls.fetch_add(1, Ordering::SeqCst);
                api.started.send_modify(|n| *n += 1);
                let _ = api.open.subscribe().wait_for(|open| *open).await;
                answer
            })
        }
    }
}

/// Spawns `once.run` for [`report`]'s key with the paid API's answer `answer`.
pub fn spawn_report<S, T>(
    once: &tollgate::once::Once<S>,
    api: &PaidApi,
    answer: T,
) -> tokio::task::JoinHandle<Result<tollgate::once::Output<T>, tollgate::once::Error<String>>>
where
    S: tollgate::once::Store,
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let (once, work) = (once.clone(), api.call(Ok(answer)));
    let (key, fp) = report();
    tokio::spawn(async move { once.run(key, fp, work).await })
}
