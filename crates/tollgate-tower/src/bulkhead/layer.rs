//! The bulkhead layers: configuration only; the work is in the services.

use tollgate::policy::Bulkhead;
use tower::Layer;

use super::{BulkheadService, HttpBulkheadService};

/// Wraps a service in a [`BulkheadService`]: a full bulkhead fails the call with
/// [`BulkheadError::Full`](super::BulkheadError::Full).
#[derive(Clone, Debug)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer over `bulkhead`; every service it makes shares the bulkhead's slots.
    pub fn new(bulkhead: Bulkhead) -> Self {
        BulkheadLayer { bulkhead }
    }

    /// Answers calls turned away with a `503` response instead of an error.
    pub fn respond_unavailable(self) -> HttpBulkheadLayer {
        HttpBulkheadLayer {
            bulkhead: self.bulkhead,
        }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}

/// Wraps an HTTP service in an [`HttpBulkheadService`]: calls turned away are answered with the
/// `503` of [`bulkhead_full_response`](super::bulkhead_full_response), and the service's error
/// type is unchanged.
#[derive(Clone, Debug)]
pub struct HttpBulkheadLayer {
    bulkhead: Bulkhead,
}

impl HttpBulkheadLayer {
    /// A layer over `bulkhead`; every service it makes shares the bulkhead's slots.
    pub fn new(bulkhead: Bulkhead) -> Self {
        HttpBulkheadLayer { bulkhead }
    }
}

impl<S> Layer<S> for HttpBulkheadLayer {
    type Service = HttpBulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpBulkheadService::new(inner, self.bulkhead.clone())
    }
}
