//! The breaker layer: configuration only; the work is in the service.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use tollgate::breaker::{Breaker, ErrIsFailure};
use tower::Layer;

use super::{BreakerService, ServerErrorIsFailure};
use crate::respond::RespondLayer;

/// Wraps a service in a [`BreakerService`]: rejected calls fail with
/// [`BreakerError::Open`](super::BreakerError::Open). The breaker is held by `H`: an
/// `Arc<Breaker>` or a `&'static Breaker` (see [how the breaker is
/// held](super#how-the-breaker-is-held)).
#[derive(Clone)]
pub struct BreakerLayer<C = ErrIsFailure, H = Arc<Breaker>> {
    breaker: H,
    classifier: C,
}

/// Wraps an HTTP service in a breaker whose rejections are answered with the `503` of
/// [`circuit_open_response`](super::circuit_open_response); the service's error type is
/// unchanged (an axum router's `Infallible` stays `Infallible`). `5xx` responses and errors
/// count as failures unless another classifier is set.
pub type HttpBreakerLayer<C = ServerErrorIsFailure, H = Arc<Breaker>> =
    RespondLayer<BreakerLayer<C, H>>;

impl<H: Deref<Target = Breaker> + Clone> BreakerLayer<ErrIsFailure, H> {
    /// A layer over `breaker` (an `Arc<Breaker>` or a `&'static Breaker`), counting every
    /// `Err` as a failure and every `Ok` as a success.
    pub fn new(breaker: H) -> Self {
        BreakerLayer {
            breaker,
            classifier: ErrIsFailure,
        }
    }
}

impl<C, H> BreakerLayer<C, H> {
    /// Classifies results with `classifier` instead (any
    /// [`Classifier`](tollgate::breaker::Classifier), e.g. [`ServerErrorIsFailure`]).
    pub fn classifier<D>(self, classifier: D) -> BreakerLayer<D, H> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// Answers rejected calls with a `503` response instead of an error; keeps the classifier.
    pub fn respond_unavailable(self) -> HttpBreakerLayer<C, H> {
        RespondLayer::wrapping(self)
    }
}

impl<H: Deref<Target = Breaker> + Clone> HttpBreakerLayer<ServerErrorIsFailure, H> {
    /// A layer over `breaker` (an `Arc<Breaker>` or a `&'static Breaker`), counting `5xx`
    /// responses and errors as failures.
    pub fn new(breaker: H) -> Self {
        RespondLayer::wrapping(BreakerLayer::new(breaker).classifier(ServerErrorIsFailure))
    }
}

impl<C, H> HttpBreakerLayer<C, H> {
    /// Classifies results with `classifier` instead.
    pub fn classifier<D>(self, classifier: D) -> HttpBreakerLayer<D, H> {
        RespondLayer::wrapping(self.inner.classifier(classifier))
    }
}

impl<S, C: Clone, H: Clone> Layer<S> for BreakerLayer<C, H> {
    type Service = BreakerService<S, C, H>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}

impl<C, H: Deref<Target = Breaker>> fmt::Debug for BreakerLayer<C, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerLayer")
            .field("breaker", &self.breaker.name())
            .field("classifier", &std::any::type_name::<C>())
            .finish()
    }
}
