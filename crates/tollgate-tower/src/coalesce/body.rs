//! The response body of a coalescing service.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tollgate::flight::Role;
use tower::BoxError;

pin_project! {
    /// The inner service's own body (a request passed through: no key), or the buffered body of
    /// a shared response (or of a rejection, through [`From<Bytes>`]).
    ///
    /// A shared response's body knows how its caller took part: [`CoalescedBody::role`].
    #[derive(Debug)]
    pub struct CoalescedBody<B> {
        role: Option<Role>,
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Buffered { #[pin] body: Full<Bytes> },
    }
}

impl<B> CoalescedBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        CoalescedBody {
            role: None,
            kind: Kind::Inner { body },
        }
    }

    /// The buffered body of a shared response, for a caller that took part as `role`.
    pub(crate) fn shared(bytes: Bytes, role: Role) -> Self {
        CoalescedBody {
            role: Some(role),
            kind: Kind::Buffered {
                body: Full::new(bytes),
            },
        }
    }

    /// How this response's caller took part in a coalesced execution: [`Role::Leader`] (its
    /// request was the one sent) or [`Role::Joiner`]. `None` when the response was not
    /// coalesced: a request the key extractor passed through, or one of the layer's own
    /// rejections.
    ///
    /// Free to read, unlike the [`Role`] in the response's extensions, which costs three
    /// allocations a response and is put there only when
    /// [`CoalesceLayer::role_in_extensions`](super::CoalesceLayer::role_in_extensions) asks.
    /// The extension is the one to use when the body is mapped into another type on its way
    /// out (axum's `Body`, say).
    pub fn role(&self) -> Option<Role> {
        self.role
    }
}

impl<B> From<Bytes> for CoalescedBody<B> {
    fn from(bytes: Bytes) -> Self {
        CoalescedBody {
            role: None,
            kind: Kind::Buffered {
                body: Full::new(bytes),
            },
        }
    }
}

impl<B> Body for CoalescedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Buffered { body } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Buffered { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Buffered { body } => body.size_hint(),
        }
    }
}
