//! The breaker layers: configuration only; the work is in the services.

use std::fmt;
use std::sync::Arc;

use tollgate::breaker::{Breaker, ErrIsFailure};
use tower::Layer;

use super::{BreakerService, HttpBreakerService, ServerErrorIsFailure};

/// Wraps a service in a [`BreakerService`]: rejected calls fail with
/// [`BreakerError::Open`](super::BreakerError::Open).
#[derive(Clone)]
pub struct BreakerLayer<C = ErrIsFailure> {
    breaker: Arc<Breaker>,
    classifier: C,
}

impl BreakerLayer {
    /// A layer over `breaker`, counting every `Err` as a failure and every `Ok` as a success.
    pub fn new(breaker: Arc<Breaker>) -> Self {
        BreakerLayer {
            breaker,
            classifier: ErrIsFailure,
        }
    }
}

impl<C> BreakerLayer<C> {
    /// Classifies results with `classifier` instead (any
    /// [`Classifier`](tollgate::breaker::Classifier), e.g. [`ServerErrorIsFailure`]).
    pub fn classifier<D>(self, classifier: D) -> BreakerLayer<D> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// Answers rejected calls with a `503` response instead of an error; keeps the classifier.
    pub fn respond_unavailable(self) -> HttpBreakerLayer<C> {
        HttpBreakerLayer {
            breaker: self.breaker,
            classifier: self.classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService::new(inner, Arc::clone(&self.breaker), self.classifier.clone())
    }
}

impl<C> fmt::Debug for BreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerLayer")
            .field("breaker", &self.breaker.name())
            .field("classifier", &std::any::type_name::<C>())
            .finish()
    }
}

/// Wraps an HTTP service in an [`HttpBreakerService`]: rejected calls are answered with the
/// `503` of [`circuit_open_response`](super::circuit_open_response), and the service's error
/// type is unchanged (an axum router's `Infallible` stays `Infallible`).
#[derive(Clone)]
pub struct HttpBreakerLayer<C = ServerErrorIsFailure> {
    breaker: Arc<Breaker>,
    classifier: C,
}

impl HttpBreakerLayer {
    /// A layer over `breaker`, counting `5xx` responses and errors as failures.
    pub fn new(breaker: Arc<Breaker>) -> Self {
        HttpBreakerLayer {
            breaker,
            classifier: ServerErrorIsFailure,
        }
    }
}

impl<C> HttpBreakerLayer<C> {
    /// Classifies results with `classifier` instead.
    pub fn classifier<D>(self, classifier: D) -> HttpBreakerLayer<D> {
        HttpBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for HttpBreakerLayer<C> {
    type Service = HttpBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpBreakerService::new(inner, Arc::clone(&self.breaker), self.classifier.clone())
    }
}

impl<C> fmt::Debug for HttpBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBreakerLayer")
            .field("breaker", &self.breaker.name())
            .field("classifier", &std::any::type_name::<C>())
            .finish()
    }
}
