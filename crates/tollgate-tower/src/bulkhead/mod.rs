//! Bulkhead middleware: at most N calls of the inner service at once.
//!
//! Each call takes a slot of a [`tollgate::policy::Bulkhead`] when its response future is first
//! polled (waiting at most the bulkhead's `max_wait`) and holds it until the inner service has
//! returned its response. No slot: the inner service is **not called** and the call fails with
//! [`BulkheadError::Full`] — or, through [`HttpBulkheadLayer`], is answered with
//! `503 Service Unavailable` and a JSON body ([`bulkhead_full_response`]).
//!
//! # Concurrency and cancellation
//! Taking a slot is one atomic step, so `N` slots admit exactly `N` concurrent calls. The slot
//! is a guard owned by the response future: it is freed when the inner call completes **or**
//! when the response future is dropped (a client that went away), never leaked. A streamed
//! response body is not covered: the slot is freed once the response head is returned.
//!
//! # Example
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use tollgate::policy::Bulkhead;
//! use tollgate_tower::bulkhead::{BulkheadError, BulkheadLayer};
//! use tower::{Layer, Service};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let bulkhead = Bulkhead::new(1, Duration::ZERO);
//! let mut svc = BulkheadLayer::new(bulkhead.clone())
//!     .layer(tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n * 2) }));
//! assert_eq!(svc.call(21).await.unwrap(), 42);
//!
//! let held = bulkhead.acquire().await.unwrap(); // someone else holds the only slot
//! assert!(matches!(svc.call(1).await, Err(BulkheadError::Full(_))));
//! drop(held);
//! assert_eq!(svc.call(1).await.unwrap(), 2);
//! # }
//! ```

mod error;
mod layer;

use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use tollgate::policy::Bulkhead;
use tower::Service;

pub use error::{BulkheadError, bulkhead_full_response};
pub use layer::{BulkheadLayer, HttpBulkheadLayer};

use crate::{BoxFuture, take_ready};

/// A service limited by a bulkhead; calls turned away are [`BulkheadError::Full`]. Made by
/// [`BulkheadLayer`].
#[derive(Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S> BulkheadService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: Bulkhead) -> Self {
        BulkheadService { inner, bulkhead }
    }
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BulkheadError<S::Error>;
    type Future = BoxFuture<Result<S::Response, BulkheadError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BulkheadError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let bulkhead = self.bulkhead.clone();
        // The slot borrows the bulkhead, so both live in this block.
        Box::pin(async move {
            let _slot = bulkhead.acquire().await.map_err(|full| {
                tracing::debug!(max = full.max_concurrent(), "bulkhead layer: call rejected");
                BulkheadError::Full(full)
            })?;
            inner.call(req).await.map_err(BulkheadError::Inner)
        })
    }
}

/// A service limited by a bulkhead; calls turned away are answered with the `503` of
/// [`bulkhead_full_response`]. Made by [`HttpBulkheadLayer`].
#[derive(Clone)]
pub struct HttpBulkheadService<S> {
    inner: BulkheadService<S>,
}

impl<S> HttpBulkheadService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: Bulkhead) -> Self {
        HttpBulkheadService {
            inner: BulkheadService::new(inner, bulkhead),
        }
    }
}

impl<S, Req, B> Service<Req> for HttpBulkheadService<S>
where
    S: Service<Req, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: From<Bytes> + Send + 'static,
    Req: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<B>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let call = self.inner.call(req);
        Box::pin(async move { call.await.or_else(BulkheadError::into_response) })
    }
}

impl<S> fmt::Debug for BulkheadService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadService")
            .field("bulkhead", &self.bulkhead)
            .finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for HttpBulkheadService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBulkheadService")
            .field("bulkhead", &self.inner.bulkhead)
            .finish_non_exhaustive()
    }
}
