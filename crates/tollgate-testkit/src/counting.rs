//! [`Counting`]: a store wrapper that counts claims, so a test can wait for a poll, and
//! records the pauses between them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tollgate::once::{
    ClaimOutcome, ClaimRequest, Key, Record, Resolution, Settle, Store, StoreError, Token,
};

/// How long [`Counting::answered`] waits before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Wraps a store, counts the claims that went through it and records each pause a waiter
/// made through it ([`Store::await_change`]). Clones share the counts.
#[derive(Clone, Debug)]
pub struct Counting<S> {
    inner: S,
    claims: Arc<watch::Sender<usize>>,
    pauses: Arc<Mutex<Vec<Pause>>>,
}

/// One [`Store::await_change`] made through a [`Counting`] store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    /// The longest the caller allowed (`within`).
    pub asked: Duration,
    /// How long the store took to return.
    pub took: Duration,
}

impl<S: Store> Counting<S> {
    /// Counts the claims made through `inner`.
    pub fn new(inner: S) -> Self {
        Counting {
            inner,
            claims: Arc::new(watch::Sender::new(0)),
            pauses: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The pauses made so far, in order.
    pub fn pauses(&self) -> Vec<Pause> {
        self.pauses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Claims made so far.
    pub fn claims(&self) -> usize {
        *self.claims.borrow()
    }

    /// Waits until at least `n` claims have been answered; panics after 30 s.
    pub async fn answered(&self, n: usize) {
        let mut claims = self.claims.subscribe();
        let answered = tokio::time::timeout(PATIENCE, claims.wait_for(|c| *c >= n)).await;
        assert!(
            matches!(answered, Ok(Ok(_))),
            "{n} claims were not answered within {PATIENCE:?}"
        );
    }
}

impl<S: Store> Store for Counting<S> {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let outcome = self.inner.claim(req).await;
        self.claims.send_modify(|c| *c += 1);
        outcome
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        self.inner.renew(key, token, lease).await
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.inner.complete(key, token, result, retention).await
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.inner
            .fail(key, token, error, retryable, retention)
            .await
    }

    async fn resolve(
        &self,
        key: &Key,
        previous: Token,
        resolution: Resolution,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.inner
            .resolve(key, previous, resolution, retention)
            .await
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        self.inner.read(key).await
    }

    async fn purge(&self) -> Result<u64, StoreError> {
        self.inner.purge().await
    }

    fn wakes_waiters(&self) -> bool {
        self.inner.wakes_waiters()
    }

    async fn await_change(&self, key: &Key, since: tokio::time::Instant, within: Duration) {
        let started = tokio::time::Instant::now();
        self.inner.await_change(key, since, within).await;
        let pause = Pause {
            asked: within,
            took: started.elapsed(),
        };
        self.pauses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(pause);
    }
}
