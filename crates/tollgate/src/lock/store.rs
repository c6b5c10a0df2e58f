//! The [`LockStore`] trait: where lock records live.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::record::{Acquisition, LockRecord, Release};
use crate::store::{Key, Owner, Settle, StoreError, Token};

/// Durable (or in-memory) storage of lock records.
///
/// **Every method is one atomic step on the backend** (a map operation under a mutex, one
/// `BEGIN IMMEDIATE` transaction) applying the rules of [`transition`](super::transition), so
/// 500 tasks racing for a key acquire it exactly once. **Times are the store's own**: callers
/// pass leases as durations and the store judges expiry by its clock (see [`crate::store`]).
/// The `tollgate-testkit` lock conformance suite (`lock_conformance!`) checks a backend.
pub trait LockStore: Send + Sync + 'static {
    /// Acquires `key` for `owner` for `lease` (see
    /// [`transition::acquire`](super::transition::acquire)).
    fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> impl Future<Output = Result<Acquisition, StoreError>> + Send;

    /// Extends the holder's lease to `lease` from the store's now; fenced unless `token` holds
    /// the key.
    fn renew(
        &self,
        key: &Key,
        token: Token,
        lease: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send;

    /// Releases `key` if `token` holds it; the fence is kept.
    fn release(
        &self,
        key: &Key,
        token: Token,
    ) -> impl Future<Output = Result<Release, StoreError>> + Send;

    /// The key's record, if it was ever locked.
    fn read(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Option<LockRecord>, StoreError>> + Send;

    /// Hands `key` from its holder `from` to `to` for `lease` with the next fence (see
    /// [`transition::hand_over`](super::transition::hand_over)): `None` when `from` does not
    /// hold it. [`LockGuard::release`](super::LockGuard::release) uses it when a task of the
    /// same process waits for the key, so the hand-off costs one round trip, not a release
    /// and an acquisition. The default does exactly those two (another owner may then
    /// acquire in between: the answer is [`Acquisition::Held`]); a backend overrides it with
    /// one atomic step.
    fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<Acquisition>, StoreError>> + Send {
        async move {
            match self.release(key, from).await? {
                Release::NotHolder => Ok(None),
                Release::Released => self.acquire(key, to, lease).await.map(Some),
            }
        }
    }
}

/// A shared lock store is a lock store.
impl<S: LockStore> LockStore for Arc<S> {
    fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> impl Future<Output = Result<Acquisition, StoreError>> + Send {
        (**self).acquire(key, owner, lease)
    }

    fn renew(
        &self,
        key: &Key,
        token: Token,
        lease: Duration,
    ) -> impl Future<Output = Result<Settle, StoreError>> + Send {
        (**self).renew(key, token, lease)
    }

    fn release(
        &self,
        key: &Key,
        token: Token,
    ) -> impl Future<Output = Result<Release, StoreError>> + Send {
        (**self).release(key, token)
    }

    fn read(
        &self,
        key: &Key,
    ) -> impl Future<Output = Result<Option<LockRecord>, StoreError>> + Send {
        (**self).read(key)
    }

    fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<Acquisition>, StoreError>> + Send {
        (**self).hand_over(key, from, to, lease)
    }
}
