//! The coalescing layer: configuration only; the work is in the service.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use http::Request;
use tower::Layer;

use super::CoalesceService;
use crate::respond::RespondLayer;

/// The default limit on a shared response body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Wraps a service in a [`CoalesceService`]: concurrent requests for which `key` returns the
/// same `Some(K)` share one call of the inner service; `None` passes a request through.
///
/// `E` is the inner service's error type, shared by every caller of a failed execution (so it
/// must be `Clone`); it is usually inferred from the service the layer wraps.
pub struct CoalesceLayer<F, K, E> {
    key: Arc<F>,
    body_limit: usize,
    _types: PhantomData<fn() -> (K, E)>,
}

/// A [`CoalesceLayer`] whose errors other than the inner service's own are answered with
/// JSON responses (see [`CoalesceError::into_response`](super::CoalesceError::into_response)).
pub type HttpCoalesceLayer<F, K, E> = RespondLayer<CoalesceLayer<F, K, E>>;

impl<F, K, E> CoalesceLayer<F, K, E> {
    /// Coalesces requests by `key` (for example method + path + a header), buffering shared
    /// response bodies up to [`DEFAULT_BODY_LIMIT`].
    pub fn new<B>(key: F) -> Self
    where
        F: Fn(&Request<B>) -> Option<K>,
    {
        CoalesceLayer {
            key: Arc::new(key),
            body_limit: DEFAULT_BODY_LIMIT,
            _types: PhantomData,
        }
    }

    /// Buffers shared response bodies up to `bytes`; a larger body fails every caller of that
    /// execution with [`CoalesceError::BodyTooLarge`](super::CoalesceError::BodyTooLarge).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Answers the layer's own failures with JSON responses instead of errors.
    pub fn respond_unavailable(self) -> HttpCoalesceLayer<F, K, E> {
        RespondLayer::wrapping(self)
    }
}

impl<S, F, K, E> Layer<S> for CoalesceLayer<F, K, E>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    type Service = CoalesceService<S, F, K, E>;

    fn layer(&self, inner: S) -> Self::Service {
        CoalesceService::new(inner, Arc::clone(&self.key), self.body_limit)
    }
}

impl<F, K, E> Clone for CoalesceLayer<F, K, E> {
    fn clone(&self) -> Self {
        CoalesceLayer {
            key: Arc::clone(&self.key),
            body_limit: self.body_limit,
            _types: PhantomData,
        }
    }
}

impl<F, K, E> fmt::Debug for CoalesceLayer<F, K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceLayer")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}
