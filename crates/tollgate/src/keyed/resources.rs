//! [`Resources`]: one cached resource per key, created at most once at a time.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use super::config::Builder;
use super::entries::Inner;
use super::{Error, Factory, Resource};
use crate::flight::Flight;

/// The resource type made by `F` for keys `K`.
type Res<K, F> = <F as Factory<K>>::Resource;
/// The creation error of `F` for keys `K`.
type Err<K, F> = <F as Factory<K>>::Error;
/// The flight that coalesces creations per key.
type Creations<K, F> = Flight<K, Arc<Res<K, F>>, Error<Err<K, F>>>;

/// Manages one live resource per key (S1's connection manager): see the [module](super) docs.
///
/// Cheap to clone: clones share the same resources.
pub struct Resources<K, F: Factory<K>> {
    inner: Arc<Inner<K, F>>,
    creating: Creations<K, F>,
}

impl<K, F> Resources<K, F>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Factory<K>,
{
    /// A manager with no limit and no idle timeout.
    pub fn new(factory: F) -> Self {
        Builder::new(factory).build()
    }

    /// Configures a manager (limit, idle timeout, clock).
    pub fn builder(factory: F) -> Builder<K, F> {
        Builder::new(factory)
    }

    pub(crate) fn from_builder(builder: Builder<K, F>) -> Self {
        Resources {
            inner: Arc::new(Inner::new(builder)),
            creating: Flight::new(),
        }
    }

    /// The healthy resource of `key`, created if there is none (or replacing an unhealthy one,
    /// which is closed).
    ///
    /// The fast path — a cached, healthy resource — reads a lock-free map and takes no lock.
    /// A creation runs at most once per key at a time; callers that arrive meanwhile wait for it
    /// and share its outcome. A failed creation is not cached. Dropping this future never
    /// cancels a creation or a close that has started.
    pub async fn get(&self, key: &K) -> Result<Arc<Res<K, F>>, Error<Err<K, F>>> {
        if let Some(entry) = self.inner.hand_out(key) {
            if entry.resource.is_healthy().await {
                return Ok(Arc::clone(&entry.resource));
            }
            tracing::debug!("keyed: replacing an unhealthy resource");
            self.inner.retire(key, entry).await;
        }
        let inner = Arc::clone(&self.inner);
        let owned = key.clone();
        let outcome = self
            .creating
            .run(key.clone(), move || inner.create(owned))
            .await;
        outcome.result.map_err(Error::from)
    }

    /// Removes the resource of `key` and closes it; `false` if there was none.
    ///
    /// A creation already running for `key` is not cancelled and caches its result.
    pub async fn remove(&self, key: &K) -> bool {
        self.inner.remove(key).await
    }

    /// Closes every resource unused for the configured idle timeout; returns how many.
    ///
    /// No background timer does this: call it periodically (e.g. from a `tokio::time::interval`
    /// task). A creation that finds the limit reached also calls it.
    pub async fn evict_idle(&self) -> usize {
        self.inner.evict_idle().await
    }

    /// Removes and closes every resource (e.g. at shutdown); returns how many.
    pub async fn close_all(&self) -> usize {
        self.inner.close_all().await
    }

    /// Number of live (cached) resources.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// `true` when no resource is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of creations running now (0 when idle: no per-key state outlives a creation).
    pub fn creating(&self) -> usize {
        self.creating.len()
    }
}

impl<K, F: Factory<K>> Clone for Resources<K, F> {
    fn clone(&self) -> Self {
        Resources {
            inner: Arc::clone(&self.inner),
            creating: self.creating.clone(),
        }
    }
}

impl<K, F> fmt::Debug for Resources<K, F>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Factory<K>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("live", &self.len())
            .field("creating", &self.creating())
            .finish_non_exhaustive()
    }
}
