//! Declarations: a node (the fields it outputs and its policy) and an intent (the fields it
//! requires and the ones it can do without). Nothing here says which node an intent needs: that
//! is derived from the fields ([`Contracts::is_required`](super::Contracts::is_required)).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What a node's call site does when the node fails (after its retries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnFailure {
    /// Fail-closed (the default): the node's fields are missing and its error is reported.
    #[default]
    Propagate,
    /// Fail-open: the node is reported `skipped` and its fields are missing.
    Skip,
    /// Run the node's fallback and await it; its fields come from the fallback.
    Fallback,
}

impl OnFailure {
    /// `propagate`, `skip` or `fallback`, as written in a contracts file.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Propagate => "propagate",
            OnFailure::Skip => "skip",
            OnFailure::Fallback => "fallback",
        }
    }
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a node's failed attempts are retried: exponential backoff with full jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySpec {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The delay before the first retry.
    pub backoff: Duration,
    /// The longest delay between two attempts.
    pub max_backoff: Duration,
}

/// A node: a name, the fields it outputs, and the policy it runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeSpec {
    /// The node's name.
    pub name: Arc<str>,
    /// The fields it outputs.
    pub outputs: Vec<Arc<str>>,
    /// The per-attempt timeout.
    pub timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry: Option<RetrySpec>,
    /// The name of its breaker in the plan's registry.
    pub breaker: Option<Arc<str>>,
    /// What failure means for it.
    pub on_failure: OnFailure,
    /// Whether it is a paid call (it must then have an idempotency key).
    pub paid: bool,
    /// The key namespace under which its calls are made idempotent.
    pub idempotency_key: Option<Arc<str>>,
}

impl NodeSpec {
    /// A node named `name` with no outputs yet, no timeout, no retry, no breaker, fail-closed.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        NodeSpec {
            name: name.into(),
            outputs: Vec::new(),
            timeout: None,
            retry: None,
            breaker: None,
            on_failure: OnFailure::Propagate,
            paid: false,
            idempotency_key: None,
        }
    }

    /// The fields the node outputs (added to any declared before).
    pub fn outputs<S: Into<Arc<str>>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.outputs.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Bounds each attempt to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries failed attempts.
    pub fn retry(mut self, retry: RetrySpec) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Gates attempts with the breaker of this name in the plan's breaker registry.
    pub fn breaker(mut self, name: impl Into<Arc<str>>) -> Self {
        self.breaker = Some(name.into());
        self
    }

    /// What failure means for this node.
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// Marks the node as a paid call: it must then have an idempotency key.
    pub fn paid(mut self) -> Self {
        self.paid = true;
        self
    }

    /// The key namespace under which the node's calls are made idempotent; the node gets it in
    /// [`NodeCall::idempotency_key`](super::NodeCall::idempotency_key).
    pub fn idempotency_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Whether it declares `field` among its outputs.
    pub fn produces(&self, field: &str) -> bool {
        self.outputs.iter().any(|f| &**f == field)
    }
}

/// An intent: the fields an answer must have, and the ones it can do without.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntentSpec {
    /// The intent's name.
    pub name: Arc<str>,
    /// The fields its answer must have.
    pub required: Vec<Arc<str>>,
    /// The fields its answer can do without.
    pub optional: Vec<Arc<str>>,
}

impl IntentSpec {
    /// An intent named `name` with no fields yet.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        IntentSpec {
            name: name.into(),
            required: Vec::new(),
            optional: Vec::new(),
        }
    }

    /// Fields the answer must have (added to any declared before).
    pub fn required<S: Into<Arc<str>>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.required.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Fields the answer can do without (added to any declared before).
    pub fn optional<S: Into<Arc<str>>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.optional.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Whether `field` is one of its fields, required or optional.
    pub fn uses(&self, field: &str) -> bool {
        self.required
            .iter()
            .chain(&self.optional)
            .any(|f| &**f == field)
    }
}
