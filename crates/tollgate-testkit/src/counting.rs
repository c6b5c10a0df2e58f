//! [`Counting`]: a store wrapper that counts claims, so a test can wait for a poll.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tollgate::once::{
    ClaimOutcome, ClaimRequest, Key, Record, Resolution, Settle, Store, StoreError, Token,
};

/// Wraps a store and counts the claims that went through it.
#[derive(Clone, Debug)]
pub struct Counting<S> {
    inner: S,
    claims: Arc<watch::Sender<usize>>,
}

impl<S: Store> Counting<S> {
    /// Counts the claims made through `inner`.
    pub fn new(inner: S) -> Self {
        Counting {
            inner,
            claims: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Claims made so far.
    pub fn claims(&self) -> usize {
        *self.claims.borrow()
    }

    /// Waits until at least `n` claims have been answered.
    pub async fn answered(&self, n: usize) {
        let _ = self.claims.subscribe().wait_for(|c| *c >= n).await;
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
        self.inner.await_change(key, since, within).await
    }
}
