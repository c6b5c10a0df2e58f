//! What [`Resources`](super::Resources) manages: a [`Resource`] made by a [`Factory`].

use std::future::Future;

/// A long-lived, shared resource such as a database client or connection.
pub trait Resource: Send + Sync + 'static {
    /// Whether the resource can still be handed out. Called on every
    /// [`Resources::get`](super::Resources::get) of a cached resource, so keep it cheap (a
    /// flag, or an occasional ping).
    fn is_healthy(&self) -> impl Future<Output = bool> + Send;

    /// Releases the resource's connection or handle. Called exactly once, after the resource
    /// left the manager (replaced, removed, evicted); callers still holding an `Arc` to it keep
    /// a closed resource.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// Creates the resource of a key.
///
/// Implemented for closures `Fn(&K) -> impl Future<Output = Result<R, E>>`; a closure must
/// copy what it needs out of the key before its `async move` block.
pub trait Factory<K>: Send + Sync + 'static {
    /// The resource made.
    type Resource: Resource;
    /// Why creation failed; shared (cloned) with every caller that waited for the creation.
    type Error: Clone + Send + Sync + 'static;

    /// Creates the resource of `key`.
    fn create(&self, key: &K) -> impl Future<Output = Result<Self::Resource, Self::Error>> + Send;
}

impl<K, F, Fut, R, E> Factory<K> for F
where
    F: Fn(&K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send,
    R: Resource,
    E: Clone + Send + Sync + 'static,
{
    type Resource = R;
    type Error = E;

    fn create(&self, key: &K) -> impl Future<Output = Result<R, E>> + Send {
        self(key)
    }
}
