//! The shared execution: call the inner service once, buffer its response for every caller.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::Response;
use http::response::Parts;
use http_body::Body;
use pin_project_lite::pin_project;
use tollgate::flight::Role;
use tower::BoxError;

use super::{CoalesceError, CoalescedBody};

/// A response buffered once and handed to every caller of its execution.
#[derive(Debug)]
pub(crate) struct SharedResponse {
    /// The inner response's head, without its extensions (they are not shared: a leader nobody
    /// joined would otherwise get them and a joiner not).
    head: Parts,
    body: Bytes,
}

impl SharedResponse {
    /// This caller's response: the buffered one itself when no other caller holds it (a leader
    /// nobody joined), a copy otherwise. Its body knows the caller's [`Role`]; so do its
    /// extensions, when `role_extension` is set.
    pub(crate) fn into_response<B>(
        shared: Arc<Self>,
        role: Role,
        role_extension: bool,
    ) -> Response<CoalescedBody<B>> {
        let mut response = match Arc::try_unwrap(shared) {
            Ok(own) => Response::from_parts(own.head, CoalescedBody::shared(own.body, role)),
            Err(shared) => {
                let mut copy = Response::new(CoalescedBody::shared(shared.body.clone(), role));
                *copy.status_mut() = shared.head.status;
                *copy.version_mut() = shared.head.version;
                *copy.headers_mut() = shared.head.headers.clone();
                copy
            }
        };
        if role_extension {
            response.extensions_mut().insert(role);
        }
        response
    }
}

/// The shared execution: the inner service's `call`, then its response body buffered up to
/// `limit` bytes (its data frames; trailers are not shared).
///
/// `None` (no call was made) ends at once as [`CoalesceError::Aborted`].
pub(crate) fn execute<F, B, E>(call: Option<F>, limit: usize) -> Execute<F, B, E> {
    Execute {
        step: match call {
            Some(call) => Step::Calling { call },
            None => Step::NotCalled,
        },
        limit,
        error: PhantomData,
    }
}

pin_project! {
    /// The future of [`execute`]. Written out rather than as an `async fn`, whose state kept
    /// the inner call's future twice (as the argument and as the awaited value) next to the
    /// buffering's locals: 496 bytes over a 144-byte call, moved three times into the box the
    /// work lives in (callgrind: `memcpy` was 16 % of a lone coalesced request).
    pub(crate) struct Execute<F, B, E> {
        #[pin]
        step: Step<F, B>,
        limit: usize,
        error: PhantomData<fn() -> E>,
    }
}

pin_project! {
    #[project = StepProj]
    #[project_replace = StepOwned]
    enum Step<F, B> {
        Calling { #[pin] call: F },
        Buffering {
            head: Parts,
            #[pin]
            body: B,
            data: Data,
        },
        // No call was made.
        NotCalled,
        // The result is out: polled again, it stays pending.
        Done,
    }
}

impl<F, B, E> Future for Execute<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Arc<SharedResponse>, CoalesceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let limit = *this.limit;
        let too_large = || CoalesceError::BodyTooLarge { limit };
        loop {
            match this.step.as_mut().project() {
                StepProj::Calling { call } => {
                    let (mut head, body) = match ready!(call.poll(cx)) {
                        Ok(response) => response.into_parts(),
                        Err(e) => {
                            this.step.set(Step::Done);
                            return Poll::Ready(Err(CoalesceError::Inner(e)));
                        }
                    };
                    if body.size_hint().lower() > limit as u64 {
                        this.step.set(Step::Done);
                        return Poll::Ready(Err(too_large()));
                    }
                    head.extensions.clear();
                    this.step.set(Step::Buffering {
                        head,
                        body,
                        data: Data::default(),
                    });
                }
                StepProj::Buffering { mut body, data, .. } => {
                    let ended = loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            None => break Ok(()),
                            Some(Err(e)) => break Err(body_error(e)),
                            Some(Ok(frame)) => {
                                if let Ok(chunk) = frame.into_data()
                                    && !data.push(chunk, limit)
                                {
                                    break Err(too_large());
                                }
                            }
                        }
                    };
                    let StepOwned::Buffering { head, data, .. } =
                        this.step.as_mut().project_replace(Step::Done)
                    else {
                        return Poll::Pending; // not reached: the step was `Buffering`
                    };
                    return Poll::Ready(ended.map(|()| {
                        Arc::new(SharedResponse {
                            head,
                            body: data.into_bytes(),
                        })
                    }));
                }
                StepProj::NotCalled => {
                    this.step.set(Step::Done);
                    return Poll::Ready(Err(CoalesceError::Aborted));
                }
                StepProj::Done => return Poll::Pending,
            }
        }
    }
}

/// A failure to read the response body, shared with every caller (and logged once).
fn body_error<E>(e: impl Into<BoxError>) -> CoalesceError<E> {
    let e: Arc<dyn std::error::Error + Send + Sync> = Arc::from(e.into());
    tracing::warn!(error = %e, "coalesce: reading the shared response body failed");
    CoalesceError::Body(e)
}

/// The body's data so far. A body of one chunk (the usual case) is kept as it is, without a
/// copy. Written out rather than http-body-util's `Limited` + `collect`, which gathers the
/// chunks in a list of its own: measured with callgrind on the coalesce layer benchmark, 5,918
/// instructions per request here against 6,395 with those.
#[derive(Default)]
struct Data {
    first: Option<Bytes>,
    joined: BytesMut,
    len: usize,
}

impl Data {
    /// Adds a chunk; `false` once the data is over `limit` bytes.
    fn push(&mut self, chunk: Bytes, limit: usize) -> bool {
        self.len = self.len.saturating_add(chunk.len());
        if self.len > limit {
            return false;
        }
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(chunk),
            earlier => {
                if let Some(earlier) = earlier {
                    self.joined.extend_from_slice(&earlier);
                }
                self.joined.extend_from_slice(&chunk);
            }
        }
        true
    }

    fn into_bytes(self) -> Bytes {
        self.first.unwrap_or_else(|| self.joined.freeze())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io;

    use http::{HeaderMap, StatusCode};
    use http_body::Frame;

    use super::*;

    /// A body of the given frames, with no size hint (as a streamed body has).
    struct Frames(VecDeque<Result<Frame<Bytes>, io::Error>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Ready(self.0.pop_front())
        }
    }

    fn data(chunk: &'static str) -> Result<Frame<Bytes>, io::Error> {
        Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))
    }

    async fn run(
        frames: Vec<Result<Frame<Bytes>, io::Error>>,
        limit: usize,
    ) -> Result<Arc<SharedResponse>, CoalesceError<()>> {
        let mut response = Response::new(Frames(frames.into()));
        *response.status_mut() = StatusCode::CREATED;
        response.headers_mut().insert("x-a", "1".parse().unwrap());
        response.extensions_mut().insert(7u8);
        execute(Some(std::future::ready(Ok::<_, ()>(response))), limit).await
    }

    #[tokio::test]
    async fn chunks_are_joined_and_trailers_left_out() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-t", "2".parse().unwrap());
        let frames = vec![
            data("ab"),
            data("cd"),
            Ok(Frame::trailers(trailers)),
            data("e"),
        ];
        let shared = run(frames, 5).await.unwrap();
        assert_eq!(shared.body, "abcde");
        let head = &shared.head;
        assert_eq!((head.status, head.headers.len()), (StatusCode::CREATED, 1));
        assert_eq!(head.extensions.len(), 0, "extensions are not shared");
    }

    #[tokio::test]
    async fn one_chunk_is_kept_as_it_is() {
        const ABC: &str = "abc";
        let shared = run(vec![data(ABC)], 3).await.unwrap();
        assert_eq!(
            shared.body.as_ptr(),
            ABC.as_ptr(),
            "the chunk itself, not a copy"
        );
        let shared = run(vec![], 0).await.unwrap();
        assert_eq!(shared.body, "");
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_limit_fails() {
        let err = run(vec![data("ab"), data("cd")], 3).await.unwrap_err();
        assert!(matches!(err, CoalesceError::BodyTooLarge { limit: 3 }));
    }

    #[tokio::test]
    async fn a_body_error_is_shared() {
        let frames = vec![data("ab"), Err(io::Error::other("reset"))];
        match run(frames, 10).await {
            Err(CoalesceError::Body(e)) => assert_eq!(e.to_string(), "reset"),
            other => panic!("expected a body error, got {other:?}"),
        }
    }

    /// A body that is not ready at first: its data comes on the second poll.
    struct Late(Option<Bytes>, bool);

    impl Body for Late {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            if !std::mem::replace(&mut self.1, true) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(self.0.take().map(|chunk| Ok(Frame::data(chunk))))
        }
    }

    #[tokio::test]
    async fn a_call_and_a_body_that_wait_are_waited_for_and_the_result_comes_once() {
        let call = async {
            tokio::task::yield_now().await;
            Ok::<_, ()>(Response::new(Late(
                Some(Bytes::from_static(b"late")),
                false,
            )))
        };
        let mut execute = std::pin::pin!(execute(Some(call), 10));
        let shared = std::future::poll_fn(|cx| execute.as_mut().poll(cx))
            .await
            .unwrap();
        assert_eq!(shared.body, "late");
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(
            execute.as_mut().poll(&mut cx).is_pending(),
            "polled again, it stays pending"
        );
    }

    #[tokio::test]
    async fn no_call_ends_as_aborted_and_stays_pending() {
        let mut execute = std::pin::pin!(execute(
            None::<std::future::Ready<Result<Response<Frames>, ()>>>,
            10
        ));
        let err = std::future::poll_fn(|cx| execute.as_mut().poll(cx))
            .await
            .unwrap_err();
        assert!(matches!(err, CoalesceError::Aborted));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(execute.as_mut().poll(&mut cx).is_pending());
    }

    #[tokio::test]
    async fn the_inner_error_is_shared() {
        let call = std::future::ready(Err::<Response<Frames>, _>(7));
        let mut execute = std::pin::pin!(execute(Some(call), 10));
        let err = std::future::poll_fn(|cx| execute.as_mut().poll(cx))
            .await
            .unwrap_err();
        assert!(matches!(err, CoalesceError::Inner(7)));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(
            execute.as_mut().poll(&mut cx).is_pending(),
            "the finished call is not polled again"
        );
    }
}
