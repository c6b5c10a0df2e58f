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
    settings: Settings,
    _types: PhantomData<fn() -> (K, E)>,
}

/// What a layer hands each of its services besides the key extractor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// The largest shared response body, in bytes.
    pub(crate) body_limit: usize,
    /// Put each response's [`Role`](tollgate::flight::Role) in its extensions too.
    pub(crate) role_extension: bool,
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
            settings: Settings {
                body_limit: DEFAULT_BODY_LIMIT,
                role_extension: false,
            },
            _types: PhantomData,
        }
    }

    /// Buffers shared response bodies up to `bytes`; a larger body fails every caller of that
    /// execution with [`CoalesceError::BodyTooLarge`](super::CoalesceError::BodyTooLarge).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// Also puts each coalesced response's [`Role`](tollgate::flight::Role) in its extensions,
    /// where it survives the body being mapped into another type (axum's `Body`, say). Off by
    /// default: it costs three allocations a response, while
    /// [`CoalescedBody::role`](super::CoalescedBody::role) carries the same for free.
    pub fn role_in_extensions(mut self) -> Self {
        self.settings.role_extension = true;
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
        CoalesceService::new(inner, Arc::clone(&self.key), self.settings)
    }
}

impl<F, K, E> Clone for CoalesceLayer<F, K, E> {
    fn clone(&self) -> Self {
        CoalesceLayer {
            key: Arc::clone(&self.key),
            settings: self.settings,
            _types: PhantomData,
        }
    }
}

impl<F, K, E> fmt::Debug for CoalesceLayer<F, K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceLayer")
            .field("body_limit", &self.settings.body_limit)
            .field("role_extension", &self.settings.role_extension)
            .finish_non_exhaustive()
    }
}
