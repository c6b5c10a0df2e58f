//! The bulkhead layer: configuration only; the work is in the service.

use tollgate::policy::Bulkhead;
use tower::Layer;

use super::BulkheadService;
use crate::respond::RespondLayer;

/// Wraps a service in a [`BulkheadService`]: a full bulkhead fails the call with
/// [`BulkheadError::Full`](super::BulkheadError::Full).
#[derive(Clone, Debug)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

/// Wraps an HTTP service in a bulkhead whose rejections are answered with the `503` of
/// [`bulkhead_full_response`](super::bulkhead_full_response); the service's error type is
/// unchanged.
pub type HttpBulkheadLayer = RespondLayer<BulkheadLayer>;

impl BulkheadLayer {
    /// A layer over `bulkhead`; every service it makes shares the bulkhead's slots.
    pub fn new(bulkhead: Bulkhead) -> Self {
        BulkheadLayer { bulkhead }
    }

    /// Answers calls turned away with a `503` response instead of an error.
    pub fn respond_unavailable(self) -> HttpBulkheadLayer {
        RespondLayer::wrapping(self)
    }
}

impl HttpBulkheadLayer {
    /// A layer over `bulkhead`; every service it makes shares the bulkhead's slots.
    pub fn new(bulkhead: Bulkhead) -> Self {
        RespondLayer::wrapping(BulkheadLayer::new(bulkhead))
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}
