//! # tollgate-tower
//!
//! [tower] middleware over tollgate's primitives, for any tower-based HTTP stack (axum, hyper,
//! tonic):
//!
//! | module | layer | what it does |
//! |---|---|---|
//! | [`idempotency`] | [`IdempotencyLayer`](idempotency::IdempotencyLayer) | `Idempotency-Key` (IETF httpapi draft): each keyed request runs once, repeats get the stored response |
//! | [`breaker`] | [`HttpBreakerLayer`](breaker::HttpBreakerLayer), [`BreakerLayer`](breaker::BreakerLayer) | circuit breaker: an open breaker answers `503` + `Retry-After` without calling the service |
//! | [`bulkhead`] | [`HttpBulkheadLayer`](bulkhead::HttpBulkheadLayer), [`BulkheadLayer`](bulkhead::BulkheadLayer) | at most N calls at once; the next one gets `503` |
//! | [`coalesce`] | [`HttpCoalesceLayer`](coalesce::HttpCoalesceLayer), [`CoalesceLayer`](coalesce::CoalesceLayer) | concurrent requests with the same key share one execution and its response |
//!
//! The plain layers return typed errors ([`BreakerError`](breaker::BreakerError),
//! [`BulkheadError`](bulkhead::BulkheadError), [`CoalesceError`](coalesce::CoalesceError)).
//! The `Http*` layers are the plain ones wrapped in the one adapter [`respond::RespondLayer`]:
//! rejections become JSON responses and the inner service's error type is kept, so they fit an
//! axum `Router::layer` whose errors are `Infallible`. Every JSON error body is
//! `{"error":"<stable code>","message":"<text>", …}` ([`response::json_error`]), and every
//! `Retry-After` is rounded by [`response::retry_after_secs`].
//!
//! Every service has a named response future (`ResponseFuture`, tower's `future.rs` style;
//! the `Http*` breaker and bulkhead services answer through `HttpResponseFuture`, which hands
//! the inner response on as it came): the breaker and bulkhead futures own their guard
//! ([`PermitGuard`](tollgate::breaker::PermitGuard),
//! [`BulkheadGuard`](tollgate::policy::BulkheadGuard)) and allocate nothing; the coalescing
//! future holds the caller's [`Turn`](tollgate::flight::Turn). The breaker and bulkhead layers
//! hold their primitive through a handle: an `Arc<Breaker>` / `Bulkhead`, or a `&'static` one,
//! whose calls touch no reference count (see [`breaker`] and [`bulkhead`]).
//!
//! # Order
//! Put the idempotency layer **outermost**: a replay is then answered from the store without
//! taking a bulkhead slot or a breaker permit, and a request turned away by the bulkhead or
//! the breaker (a `503`) is not stored, so its retry runs. The bulkhead goes outside the
//! breaker, as in [`tollgate::policy`]: a call turned away because we are saturated is never
//! counted as a failure of the dependency.
//!
//! # Example
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tollgate::breaker::{Breaker, BreakerConfig};
//! use tollgate::once::MemoryStore;
//! use tollgate::policy::Bulkhead;
//! use tollgate_tower::breaker::HttpBreakerLayer;
//! use tollgate_tower::bulkhead::HttpBulkheadLayer;
//! use tollgate_tower::idempotency::IdempotencyLayer;
//! use tower::{Service, ServiceBuilder};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let breaker = Arc::new(Breaker::new("payments", BreakerConfig::default()).unwrap());
//! let mut app = ServiceBuilder::new()
//!     .layer(IdempotencyLayer::new(MemoryStore::new()))
//!     .layer(HttpBulkheadLayer::new(Bulkhead::new(64, Duration::ZERO)))
//!     .layer(HttpBreakerLayer::new(breaker))
//!     .service_fn(|_req: Request<Full<Bytes>>| async {
//!         let mut res = Response::new(Full::new(Bytes::from_static(b"{\"paid\":true}")));
//!         *res.status_mut() = StatusCode::CREATED;
//!         Ok::<_, Infallible>(res)
//!     });
//! let pay = || {
//!     Request::post("/payments")
//!         .header("idempotency-key", "pay-42")
//!         .body(Full::new(Bytes::from_static(b"{\"amount\":10}")))
//!         .unwrap()
//! };
//! assert_eq!(app.call(pay()).await.unwrap().status(), StatusCode::CREATED);
//! let again = app.call(pay()).await.unwrap();
//! assert_eq!(again.headers()["idempotent-replayed"], "true");
//! # }
//! ```
//!
//! With axum 0.8, the same layers go on a router: `Router::new().route(…).layer(layer)`
//! (request bodies are rebuilt with `axum::body::Body: From<Bytes>`).
#![forbid(unsafe_code)]

pub mod breaker;
pub mod bulkhead;
pub mod coalesce;
pub mod idempotency;
pub mod respond;
pub mod response;

/// The clone-and-swap of tower middleware: the service that was driven ready goes into the
/// response future, a fresh clone stays behind for the next `poll_ready`.
pub(crate) fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    std::mem::replace(service, clone)
}
