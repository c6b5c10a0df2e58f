//! The layers stacked the way an axum app uses them: on a request body that, like axum's, is
//! `Send` but not `Sync` and built `From<Bytes>`, with `Infallible` errors throughout; checked
//! against the bounds of axum 0.8's `Router::layer`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tollgate::breaker::{Breaker, BreakerConfig};
use tollgate::once::MemoryStore;
use tollgate::policy::Bulkhead;
use tollgate_tower::breaker::HttpBreakerLayer;
use tollgate_tower::bulkhead::HttpBulkheadLayer;
use tollgate_tower::idempotency::IdempotencyLayer;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// A body like `axum::body::Body`: boxed, `Send`, not `Sync`, `From<Bytes>`.
struct AxumLikeBody(UnsyncBoxBody<Bytes, BoxError>);

impl From<Bytes> for AxumLikeBody {
    fn from(bytes: Bytes) -> Self {
        AxumLikeBody(
            Full::new(bytes)
                .map_err(|never: Infallible| match never {})
                .boxed_unsync(),
        )
    }
}

impl Body for AxumLikeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// What `Router::layer` asks of the service a layer makes.
fn assert_axum_layer_bounds<L, S, B>(layer: &L, inner: S) -> L::Service
where
    L: Layer<S>,
    L::Service: Service<Request<AxumLikeBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as Service<Request<AxumLikeBody>>>::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    layer.layer(inner)
}

fn app(
    calls: Arc<AtomicUsize>,
) -> impl Service<
    Request<AxumLikeBody>,
    Response = Response<AxumLikeBody>,
    Error = Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(move |req: Request<AxumLikeBody>| {
        let calls = calls.clone();
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let mut res = Response::new(AxumLikeBody::from(Bytes::from(format!(
                "order {n}: {}",
                String::from_utf8_lossy(&body)
            ))));
            *res.status_mut() = StatusCode::CREATED;
            Ok::<_, Infallible>(res)
        }
    })
}

fn post(key: &str) -> Request<AxumLikeBody> {
    Request::builder()
        .method(Method::POST)
        .uri("/orders")
        .header("idempotency-key", key)
        .body(AxumLikeBody::from(Bytes::from_static(b"tea")))
        .unwrap()
}

#[test]
fn every_layer_meets_the_bounds_of_axum_router_layer() {
    let calls = Arc::new(AtomicUsize::new(0));
    let breaker = Arc::new(Breaker::new("b", BreakerConfig::default()).unwrap());
    let _ = assert_axum_layer_bounds(&HttpBreakerLayer::new(breaker), app(calls.clone()));
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let _ = assert_axum_layer_bounds(&HttpBulkheadLayer::new(bulkhead), app(calls.clone()));
    let idempotency = IdempotencyLayer::new(MemoryStore::new());
    let _ = assert_axum_layer_bounds(&idempotency, app(calls));
}

/// Idempotency outermost: a replay is answered from the store and takes neither a bulkhead
/// slot nor a breaker permit.
#[tokio::test]
async fn stacked_layers_replay_without_reaching_breaker_or_bulkhead() {
    let calls = Arc::new(AtomicUsize::new(0));
    let breaker = Arc::new(Breaker::new("b", BreakerConfig::default()).unwrap());
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let stack = ServiceBuilder::new()
        .layer(IdempotencyLayer::new(MemoryStore::new()))
        .layer(HttpBulkheadLayer::new(bulkhead.clone()))
        .layer(HttpBreakerLayer::new(breaker.clone()))
        .service(app(calls.clone()));

    let first = stack.clone().oneshot(post("k")).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(first, "order 1: tea");

    // The breaker is forced open and the only bulkhead slot taken: a replay still answers.
    breaker.force_open();
    let _slot = bulkhead.acquire().await.unwrap();
    let again = stack.clone().oneshot(post("k")).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.into_body().collect().await.unwrap().to_bytes(), first);

    // A new key does reach them: the bulkhead turns it away, and nothing is stored for it.
    let fresh = stack.clone().oneshot(post("k2")).await.unwrap();
    assert_eq!(fresh.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
