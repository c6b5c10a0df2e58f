//! [`Unreachable`]: a store wrapper whose connection can be cut, for lost-lease tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tollgate::once::{
    ClaimOutcome, ClaimRequest, Key, Record, Resolution, Settle, Store, StoreError, StoreErrorKind,
    Token,
};

/// Wraps a store; after [`Unreachable::cut`] every operation fails with
/// [`StoreErrorKind::Unavailable`] (as over a dropped connection) and is counted.
#[derive(Clone, Debug)]
pub struct Unreachable<S> {
    inner: S,
    cut: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    renewals_refused: Arc<AtomicUsize>,
}

impl<S: Store> Unreachable<S> {
    /// A reachable wrapper around `inner`.
    pub fn new(inner: S) -> Self {
        Unreachable {
            inner,
            cut: Arc::default(),
            refused: Arc::default(),
            renewals_refused: Arc::default(),
        }
    }

    /// Cuts the connection: every later operation fails.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Operations refused since the cut.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Renewals refused since the cut.
    pub fn renewals_refused(&self) -> usize {
        self.renewals_refused.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), StoreError> {
        if !self.cut.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::msg(
            StoreErrorKind::Unavailable,
            "connection refused",
        ))
    }
}

impl<S: Store> Store for Unreachable<S> {
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.check()?;
        self.inner.claim(req).await
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        if let Err(e) = self.check() {
            self.renewals_refused.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
        self.inner.renew(key, token, lease).await
    }

    async fn complete(
        &self,
        key: &Key,
        token: Token,
        result: Vec<u8>,
        retention: Duration,
    ) -> Result<Settle, StoreError> {
        self.check()?;
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
        self.check()?;
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
        self.check()?;
        self.inner
            .resolve(key, previous, resolution, retention)
            .await
    }

    async fn read(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        self.check()?;
        self.inner.read(key).await
    }

    async fn purge(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge().await
    }

    fn wakes_waiters(&self) -> bool {
        self.inner.wakes_waiters()
    }

    async fn await_change(&self, key: &Key, since: tokio::time::Instant, within: Duration) {
        self.inner.await_change(key, since, within).await
    }
}
