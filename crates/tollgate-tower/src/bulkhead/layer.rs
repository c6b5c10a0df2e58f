//! The bulkhead layer: configuration only; the work is in the service.

use tollgate::policy::Bulkhead;
use tower::Layer;

use super::{BulkheadHandle, BulkheadService};
use crate::respond::RespondLayer;

/// Wraps a service in a [`BulkheadService`]: a full bulkhead fails the call with
/// [`BulkheadError::Full`](super::BulkheadError::Full). The bulkhead is held by `H`: a
/// [`Bulkhead`] or a `&'static Bulkhead` (see [how the bulkhead is
/// held](super#how-the-bulkhead-is-held)).
#[derive(Clone, Debug)]
pub struct BulkheadLayer<H = Bulkhead> {
    bulkhead: H,
}

/// Wraps an HTTP service in a bulkhead whose rejections are answered with the `503` of
/// [`bulkhead_full_response`](super::bulkhead_full_response); the service's error type is
/// unchanged.
pub type HttpBulkheadLayer<H = Bulkhead> = RespondLayer<BulkheadLayer<H>>;

impl<H: BulkheadHandle> BulkheadLayer<H> {
    /// A layer over `bulkhead` (a [`Bulkhead`] or a `&'static Bulkhead`); every service it
    /// makes shares the bulkhead's slots.
    pub fn new(bulkhead: H) -> Self {
        BulkheadLayer { bulkhead }
    }

    /// Answers calls turned away with a `503` response instead of an error.
    pub fn respond_unavailable(self) -> HttpBulkheadLayer<H> {
        RespondLayer::wrapping(self)
    }
}

impl<H: BulkheadHandle> HttpBulkheadLayer<H> {
    /// A layer over `bulkhead` (a [`Bulkhead`] or a `&'static Bulkhead`); every service it
    /// makes shares the bulkhead's slots.
    pub fn new(bulkhead: H) -> Self {
        RespondLayer::wrapping(BulkheadLayer::new(bulkhead))
    }
}

impl<S, H: BulkheadHandle> Layer<S> for BulkheadLayer<H> {
    type Service = BulkheadService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}
