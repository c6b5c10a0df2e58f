//! [`Counting`]: a store wrapper that counts claims, so a test can wait for a poll.

use std::sync::Arc;

use tokio::sync::watch;
use tollgate::once::{
    ClaimOutcome, ClaimRequest, Key, Record, Settle, Store, StoreError, Timestamp, Token,
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

    async fn renew(&self, key: &Key, token: Token, until: Timestamp) -> Result<Settle, StoreError> {
        self.inner.renew(key, token, until).await
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        expires_at: Timestamp,
    ) -> Result<Settle, StoreError> {
        self.inner.complete(key, token, result, expires_at).await
    }

    async fn fail(
        &self,
        key: &Key,
        token: Token,
        error: Vec<u8>,
        retryable: bool,
        expires_at: Timestamp,
    ) -> Result<Settle, StoreError> {
        self.inner
            .fail(key, token, error, retryable, expires_at)
            .await
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        self.inner.read(key).await
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge(now).await
    }
}
