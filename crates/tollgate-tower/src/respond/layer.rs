//! The adapter's layer: configuration only.

use tower::Layer;

use super::Respond;

/// Wraps the service made by a tollgate layer `L` in [`Respond`], so its rejections are
/// answered with HTTP responses.
#[derive(Clone, Debug)]
pub struct RespondLayer<L> {
    pub(crate) inner: L,
}

impl<L> RespondLayer<L> {
    /// Answers the rejections of `inner`'s services with HTTP responses.
    pub fn wrapping(inner: L) -> Self {
        RespondLayer { inner }
    }
}

impl<S, L: Layer<S>> Layer<S> for RespondLayer<L> {
    type Service = Respond<L::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        Respond::new(self.inner.layer(inner))
    }
}
