//! Request coalescing: concurrent requests with the same key share one call of the inner
//! service, and every one of them gets its response.
//!
//! A key extractor you supply (`Fn(&Request<B>) -> Option<K>`, e.g. method + path + a header)
//! names what "the same request" means; `None` passes a request through untouched. The first
//! request of a key (the *leader*) calls the inner service; requests of that key arriving while
//! it runs (*joiners*) wait for the same call. The response body is buffered (up to
//! [`CoalesceLayer::body_limit`], default 1 MiB) and every caller gets a copy: status, version,
//! headers and body. The body tells how its caller took part ([`CoalescedBody::role`]: leader
//! or joiner); [`CoalesceLayer::role_in_extensions`] puts the same [`Role`] in the response's
//! extensions. The request bodies of joiners are never read.
//!
//! Coalescing is for idempotent reads (`GET` of the same resource): put only requests whose
//! responses are interchangeable under one key. Response extensions and trailers are not
//! shared (the leader's are dropped too, so every caller gets the same response).
//!
//! # Guarantees under concurrency and cancellation
//! Built on [`tollgate::flight`], so its guarantees carry over:
//! - **One call of the inner service per key at a time**, however many requests race
//!   (`tests/coalesce.rs::a_thousand_racing_requests_for_one_key_call_the_service_once_and_all_get_its_response`;
//!   300 HTTP clients behind axum:
//!   `tests/coalesce_http.rs::three_hundred_http_clients_racing_for_one_report_share_one_upstream_call`).
//! - **The execution survives the leader's cancellation**: no request owns it (a lone leader
//!   runs it in its own future; it moves into a task of its own when a second request joins or
//!   the leader is dropped), so a leader whose client went away does not cancel it and joiners
//!   still get its response
//!   (`tests/coalesce.rs::the_call_survives_the_leaders_cancellation_and_the_joiner_gets_its_response`;
//!   behind axum over TCP, with a client that hangs up:
//!   `tests/coalesce_http.rs::a_leader_whose_client_hangs_up_does_not_cancel_the_call_its_joiners_wait_for`).
//! - **Errors are shared, not retried**: an error of the inner service (it must be `Clone`), a
//!   body over the limit or a panic reaches every caller of that execution as a
//!   [`CoalesceError`]; the next request after it runs afresh.
//! - No per-key state outlives its execution; distinct keys never wait on each other.
//! - **A request takes its turn when it is called** (`Service::call`, through
//!   [`Flight::enter`](tollgate::flight::Flight::enter)), not at the response future's first
//!   poll: a leader's execution starts then and runs even if its response future is dropped
//!   unpolled, and a request called later joins it
//!   (`tests/coalesce.rs::a_call_starts_at_call_time_even_if_its_response_future_is_never_polled`).
//!   The execution runs in the tracing span that is current at `call` (as with tower-http's
//!   `TraceLayer`, which enters its span around it), and on the runtime of the leader's `call`.
//!
//! # Cost
//! A request with nothing to coalesce pays for the bookkeeping that would let others join it:
//! its key's entry in a sharded map (hashed with SipHash, against flooding by request keys), the
//! shared call and its boxed work (so the work can move into a task if the leader is dropped),
//! and the buffered response. On the project's benchmark machines that is ≈ 0.23–0.40 µs over
//! calling the service directly (`docs/PERFORMANCE.md` in the repository, sessions 12–14),
//! ≈ 73–89 ns (20–35 %) more than tower-resilience's coalescer. Joiners sleep until the result
//! is out instead of polling for it: a burst of 100 same-key requests costs the runtime's
//! workers 0.11–0.28 ms, against ≈ 4 ms for tower-resilience's. So coalesce the routes where
//! identical requests do arrive together (an expensive report, a cache fill), not every route.
//!
//! # Metrics
//! `tollgate_coalesce_requests_total{role}`: every request, by how it took part: `leader` (it
//! called the inner service), `joiner` (it shared a leader's call) or `passthrough` (the key
//! extractor gave no key). Joiners over all coalesced requests is the share of upstream calls
//! saved. The counters are registered when the layer makes its service (`Layer::layer`): install
//! the metrics recorder before building the service stack, as usual with the `metrics` crate.
//!
//! # Calling the inner service
//! Only a leader calls the inner service, inside its own `call` (the shared work then holds the
//! inner service's future, not the request). So:
//! - the inner service's future must be `'static` (the work outlives the `call` that made it);
//!   a service built with `service_fn` over an `async` block, or any boxed future, is;
//! - a joiner does not call the inner service: whatever its `poll_ready` reserved (a
//!   `ConcurrencyLimit` permit, a `Buffer` slot) stays with this service for its next call, or
//!   is freed when the service is dropped — at once for servers that clone the service for each
//!   request, as axum and hyper do;
//! - a panic in the inner service's `call` reaches every caller of that execution as
//!   [`CoalesceError::Panicked`] (`tests/coalesce.rs::a_panic_in_the_inner_services_call_itself_reaches_the_caller_and_frees_the_key`),
//!   and the service goes on serving: a service that a panic can leave broken should not be
//!   coalesced, or should catch its own panics.
//!
//! # Example
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Method, Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tollgate::flight::Role;
//! use tollgate_tower::coalesce::CoalesceLayer;
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let by_path = |req: &Request<Full<Bytes>>| {
//!     (req.method() == Method::GET).then(|| req.uri().path().to_owned())
//! };
//! let svc = CoalesceLayer::new(by_path).layer(tower::service_fn(|_req| async {
//!     tokio::task::yield_now().await; // the report takes a while
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"report"))))
//! }));
//! let get = || Request::get("/report").body(Full::default()).unwrap();
//! // The first request leads; the second arrives while its call runs and joins it.
//! let (a, b) = tokio::join!(svc.clone().oneshot(get()), svc.clone().oneshot(get()));
//! let (a, b) = (a.unwrap(), b.unwrap());
//! assert_eq!(a.body().role(), Some(Role::Leader));
//! assert_eq!(b.body().role(), Some(Role::Joiner));
//! assert_eq!(b.into_body().collect().await.unwrap().to_bytes(), "report");
//! # }
//! ```

mod body;
mod error;
mod future;
mod layer;
mod shared;

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use metrics::Counter;
use tollgate::flight::{Flight, Role};
use tower::{BoxError, Service};

pub use body::CoalescedBody;
pub use error::CoalesceError;
pub use future::ResponseFuture;
pub use layer::{CoalesceLayer, DEFAULT_BODY_LIMIT, HttpCoalesceLayer};

use crate::respond::{Rejecting, Respond, RespondFuture};
use layer::Settings;
use shared::SharedResponse;

/// A service whose concurrent same-key requests share one call. Made by [`CoalesceLayer`].
pub struct CoalesceService<S, F, K, E> {
    inner: S,
    /// The flight, the key extractor, the metric handles and the settings, behind one
    /// reference count: the service is one pointer besides `inner`, and a clone and its drop
    /// update one count, not one for the flight and one for the rest (an atomic
    /// read-modify-write costs 10 ns on some machines: `docs/PERFORMANCE.md`, session 13).
    common: Arc<Common<F, K, E>>,
}

/// A [`CoalesceService`] whose own failures are answered with JSON responses. Made by
/// [`HttpCoalesceLayer`].
pub type HttpCoalesceService<S, F, K, E> = Respond<CoalesceService<S, F, K, E>>;

impl<S, F, K, E> CoalesceService<S, F, K, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(inner: S, key: Arc<F>, settings: Settings) -> Self {
        CoalesceService {
            inner,
            common: Arc::new(Common {
                flight: Flight::new(),
                key,
                counters: Counters::registered(),
                settings,
            }),
        }
    }

    /// Executions running now (0 when idle).
    pub fn in_flight(&self) -> usize {
        self.common.flight.len()
    }
}

impl<S, F, K, E, ReqBody, ResBody> Service<Request<ReqBody>> for CoalesceService<S, F, K, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = E>,
    S::Future: Send + 'static,
    F: Fn(&Request<ReqBody>) -> Option<K>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<CoalescedBody<ResBody>>;
    type Error = CoalesceError<E>;
    type Future = ResponseFuture<S::Future, ResBody, K, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(CoalesceError::Inner)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let Some(key) = (self.common.key)(&req) else {
            self.common.counters.passthrough.increment(1);
            return ResponseFuture::passthrough(self.inner.call(req));
        };
        let Settings {
            body_limit,
            role_extension,
        } = self.common.settings;
        // The turn is taken now: a leader's execution is registered (and runs, even if this
        // future is dropped unpolled) from the moment of the call. Only a leader calls the
        // inner service, here, so the work holds the call's future rather than the request;
        // a joiner's request is dropped and the service stays ready for the next one.
        // The work borrows the request where it is, so that a leader moves it once, into the
        // inner call, rather than into the work and along with it (five moves of ~250 bytes).
        let inner = &mut self.inner;
        let mut req = Some(req);
        let request = &mut req;
        let turn = self.common.flight.enter(key, move || {
            shared::execute(request.take().map(|req| inner.call(req)), body_limit)
        });
        self.common.counters.count(turn.role());
        ResponseFuture::shared(turn, role_extension)
    }
}

/// What every clone of a service shares: the flight, the key extractor, the metric handles and
/// the settings (one reference count for all).
struct Common<F, K, E> {
    flight: Flight<K, Arc<SharedResponse>, CoalesceError<E>>,
    key: Arc<F>,
    counters: Counters,
    settings: Settings,
}

/// `tollgate_coalesce_requests_total{role}`, registered once per service (when the layer makes
/// it) rather than looked up on every request, which cost ≈ 400 instructions a request with
/// no recorder at all.
struct Counters {
    leader: Counter,
    joiner: Counter,
    passthrough: Counter,
}

impl Counters {
    fn registered() -> Self {
        let by_role = |role: Role| Self::register(role.as_str());
        Counters {
            leader: by_role(Role::Leader),
            joiner: by_role(Role::Joiner),
            passthrough: Self::register("passthrough"),
        }
    }

    fn register(role: &'static str) -> Counter {
        metrics::counter!("tollgate_coalesce_requests_total", "role" => role)
    }

    fn count(&self, role: Role) {
        match role {
            Role::Leader => self.leader.increment(1),
            Role::Joiner => self.joiner.increment(1),
            // Not played here (the layer's flight has no result cache); counted all the same.
            other => Self::register(other.as_str()).increment(1),
        }
    }
}

impl<S, F, K, E, ReqBody, ResBody> Rejecting<Request<ReqBody>> for CoalesceService<S, F, K, E>
where
    Self: Service<
            Request<ReqBody>,
            Response = Response<CoalescedBody<ResBody>>,
            Error = CoalesceError<E>,
        >,
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = E>,
{
    type Answering = RespondFuture<<Self as Service<Request<ReqBody>>>::Future>;

    fn call_answering(&mut self, req: Request<ReqBody>) -> Self::Answering {
        RespondFuture::new(self.call(req))
    }

    fn poll_inner_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }
}

impl<S: Clone, F, K, E> Clone for CoalesceService<S, F, K, E> {
    fn clone(&self) -> Self {
        CoalesceService {
            inner: self.inner.clone(),
            common: Arc::clone(&self.common),
        }
    }
}

impl<S, F, K: Hash + Eq, E> fmt::Debug for CoalesceService<S, F, K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceService")
            .field("body_limit", &self.common.settings.body_limit)
            .field("role_extension", &self.common.settings.role_extension)
            .field("flight", &self.common.flight)
            .finish_non_exhaustive()
    }
}
