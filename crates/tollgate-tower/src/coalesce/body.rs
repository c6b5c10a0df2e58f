//! The response body of a coalescing service.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower::BoxError;

pin_project! {
    /// The inner service's own body (a request passed through: no key), or the buffered body of
    /// a shared response (or of a rejection, through [`From<Bytes>`]).
    #[derive(Debug)]
    pub struct CoalescedBody<B> {
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
            kind: Kind::Inner { body },
        }
    }
}

impl<B> From<Bytes> for CoalescedBody<B> {
    fn from(bytes: Bytes) -> Self {
        CoalescedBody {
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
