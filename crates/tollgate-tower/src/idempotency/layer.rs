//! The idempotency layer and its settings.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderName, Method, StatusCode};
use tollgate::once::{Once, Store};
use tower::Layer;

use super::IdempotencyService;

/// Finds the tenant of a request; see [`IdempotencyLayer::tenant`].
pub type TenantFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// The settings shared by every clone of a layer's services.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) namespace: String,
    pub(crate) header: HeaderName,
    pub(crate) replay_header: HeaderName,
    pub(crate) methods: Vec<Method>,
    pub(crate) key_required: bool,
    pub(crate) max_key_len: usize,
    pub(crate) body_limit: usize,
    pub(crate) response_limit: Option<usize>,
    pub(crate) tenant: Option<TenantFn>,
    pub(crate) tenant_missing: StatusCode,
}

/// Makes requests with an `Idempotency-Key` run once and replay their response; see the
/// [module](super) docs for the behaviour and the defaults.
pub struct IdempotencyLayer<St> {
    once: Once<St>,
    config: Config,
}

impl<St: Store> IdempotencyLayer<St> {
    /// A layer storing responses in `store`, through an engine with the default options:
    /// a key in progress is a conflict (`409`), a completed key is replayed.
    pub fn new(store: St) -> Self {
        Self::with_once(Once::new(store))
    }

    /// A layer over an engine configured by the caller (lease, retention, clock, or
    /// [`OnInProgress::Wait`](tollgate::once::OnInProgress::Wait) to make a repeat wait for
    /// the first request instead of getting `409`).
    pub fn with_once(once: Once<St>) -> Self {
        IdempotencyLayer {
            once,
            config: Config {
                namespace: "idempotency".to_owned(),
                header: HeaderName::from_static("idempotency-key"),
                replay_header: HeaderName::from_static("idempotent-replayed"),
                methods: vec![Method::POST, Method::PATCH],
                key_required: true,
                max_key_len: 255,
                body_limit: 1024 * 1024,
                response_limit: None,
                tenant: None,
                tenant_missing: StatusCode::UNAUTHORIZED,
            },
        }
    }
}

impl<St> IdempotencyLayer<St> {
    /// The namespace of the records (default `idempotency`): give each API its own when they
    /// share a store.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }

    /// The header carrying the key (default `Idempotency-Key`).
    pub fn header(mut self, name: HeaderName) -> Self {
        self.config.header = name;
        self
    }

    /// The header added to replayed responses, with the value `true` (default
    /// `Idempotent-Replayed`).
    pub fn replay_header(mut self, name: HeaderName) -> Self {
        self.config.replay_header = name;
        self
    }

    /// The methods the layer handles (default `POST` and `PATCH`); requests with other methods
    /// pass through untouched, key or not.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.config.methods = methods.into_iter().collect();
        self
    }

    /// Whether a request of a handled method without a key is refused with `400` (default
    /// `true`) or passes through untouched.
    pub fn key_required(mut self, required: bool) -> Self {
        self.config.key_required = required;
        self
    }

    /// The longest accepted key, in bytes (default 255).
    pub fn max_key_len(mut self, max: usize) -> Self {
        self.config.max_key_len = max;
        self
    }

    /// The largest request body buffered for the fingerprint, in bytes (default 1 MiB); a
    /// larger one is refused with `413`.
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.config.body_limit = limit;
        self
    }

    /// The largest response body stored, in bytes (default: no limit). A larger response is
    /// not stored: the key is freed and the caller gets `502 response_too_large`, since the
    /// part already read cannot be handed on.
    pub fn response_limit(mut self, limit: usize) -> Self {
        self.config.response_limit = Some(limit);
        self
    }

    /// Scopes keys by tenant: `extract` names the request's tenant (from an auth header, a
    /// verified token's claims put in the extensions, …). Each tenant has its own keys, so one
    /// tenant never sees another's response. A request with a key whose tenant is `None` is
    /// refused with `401` (see [`tenant_missing_status`](Self::tenant_missing_status)).
    pub fn tenant<F>(mut self, extract: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.config.tenant = Some(Arc::new(extract));
        self
    }

    /// The status for a request whose tenant is not found (default `401 Unauthorized`).
    pub fn tenant_missing_status(mut self, status: StatusCode) -> Self {
        self.config.tenant_missing = status;
        self
    }

    /// The engine.
    pub fn once(&self) -> &Once<St> {
        &self.once
    }
}

impl<S, St> Layer<S> for IdempotencyLayer<St> {
    type Service = IdempotencyService<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        IdempotencyService::new(inner, self.once.clone(), Arc::new(self.config.clone()))
    }
}

impl<St> Clone for IdempotencyLayer<St> {
    fn clone(&self) -> Self {
        IdempotencyLayer {
            once: self.once.clone(),
            config: self.config.clone(),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("namespace", &self.namespace)
            .field("header", &self.header)
            .field("replay_header", &self.replay_header)
            .field("methods", &self.methods)
            .field("key_required", &self.key_required)
            .field("max_key_len", &self.max_key_len)
            .field("body_limit", &self.body_limit)
            .field("response_limit", &self.response_limit)
            .field("tenant_scoped", &self.tenant.is_some())
            .field("tenant_missing", &self.tenant_missing)
            .finish()
    }
}

impl<St: fmt::Debug> fmt::Debug for IdempotencyLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyLayer")
            .field("once", &self.once)
            .field("config", &self.config)
            .finish()
    }
}
