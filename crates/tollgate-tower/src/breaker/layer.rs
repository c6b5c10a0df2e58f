//! The breaker layer: configuration only; the work is in the service.

use std::fmt;
use std::sync::Arc;

use tollgate::breaker::{Breaker, ErrIsFailure};
use tower::Layer;

use super::{BreakerService, ServerErrorIsFailure};
use crate::respond::RespondLayer;

/// Wraps a service in a [`BreakerService`]: rejected calls fail with
/// [`BreakerError::Open`](super::BreakerError::Open).
#[derive(Clone)]
pub struct BreakerLayer<C = ErrIsFailure> {
    breaker: Arc<Breaker>,
    classifier: C,
}

/// Wraps an HTTP service in a breaker whose rejections are answered with the `503` of
/// [`circuit_open_response`](super::circuit_open_response); the service's error type is
/// unchanged (an axum router's `Infallible` stays `Infallible`). `5xx` responses and errors
/// count as failures unless another classifier is set.
pub type HttpBreakerLayer<C = ServerErrorIsFailure> = RespondLayer<BreakerLayer<C>>;

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
        RespondLayer::wrapping(self)
    }
}

impl HttpBreakerLayer {
    /// A layer over `breaker`, counting `5xx` responses and errors as failures.
    pub fn new(breaker: Arc<Breaker>) -> Self {
        RespondLayer::wrapping(BreakerLayer::new(breaker).classifier(ServerErrorIsFailure))
    }
}

impl<C> HttpBreakerLayer<C> {
    /// Classifies results with `classifier` instead.
    pub fn classifier<D>(self, classifier: D) -> HttpBreakerLayer<D> {
        RespondLayer::wrapping(self.inner.classifier(classifier))
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
