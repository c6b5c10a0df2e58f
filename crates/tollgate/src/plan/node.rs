//! A node's implementation bound to its declaration and policy, and one resolution of it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::outputs::Outputs;
use super::spec::{NodeSpec, OnFailure};
use crate::policy::{Policy, PolicyError, Resolution, Status};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
pub(crate) type NodeResult<V, E> = Result<Outputs<V>, E>;
pub(crate) type NodeFn<I, V, E> =
    Arc<dyn Fn(NodeCall<I>) -> BoxFuture<NodeResult<V, E>> + Send + Sync>;
pub(crate) type FallbackFn<I, V, E> =
    Arc<dyn Fn(NodeCall<I>, &PolicyError<E>) -> BoxFuture<NodeResult<V, E>> + Send + Sync>;

/// What a node (or its fallback) is called with: the run's input, and who is calling.
#[derive(Clone)]
pub struct NodeCall<I> {
    input: I,
    node: Arc<str>,
    intent: Arc<str>,
    idempotency_key: Option<Arc<str>>,
}

impl<I> NodeCall<I> {
    /// The input given to the run.
    pub fn input(&self) -> &I {
        &self.input
    }

    /// The input given to the run, by value.
    pub fn into_input(self) -> I {
        self.input
    }

    /// The node being called.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The intent being run.
    pub fn intent(&self) -> &str {
        &self.intent
    }

    /// The node's declared idempotency key namespace (paid nodes always have one): combine it
    /// with the request's own identity to key the paid call, e.g. with [`crate::once`].
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

impl<I> fmt::Debug for NodeCall<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCall")
            .field("node", &self.node)
            .field("intent", &self.intent)
            .finish_non_exhaustive()
    }
}

/// A declared node with its implementation, fallback and built policy.
pub(crate) struct BoundNode<I, V, E> {
    pub(crate) spec: NodeSpec,
    pub(crate) policy: Policy,
    pub(crate) op: NodeFn<I, V, E>,
    pub(crate) fallback: Option<FallbackFn<I, V, E>>,
}

/// A node's resolution, whatever its fail mode.
pub(crate) struct Resolved<V, E> {
    pub(crate) status: Status,
    pub(crate) value: Option<Outputs<V>>,
    pub(crate) error: Option<PolicyError<E>>,
    pub(crate) fallback_error: Option<E>,
}

impl<V, E> Resolved<V, E> {
    fn from<F>(resolution: Resolution<Outputs<V>, E, F>, fallback_error: fn(F) -> E) -> Self {
        let status = resolution.status();
        let (value, error, failed_fallback) = match resolution {
            Resolution::Success(value) => (Some(value), None, None),
            Resolution::FallbackSuccess { value, error } => (Some(value), Some(error), None),
            Resolution::Skipped { error } => (None, Some(error), None),
            Resolution::Failed {
                error,
                fallback_error,
            } => (None, Some(error), fallback_error),
        };
        Resolved {
            status,
            value,
            error,
            fallback_error: failed_fallback.map(fallback_error),
        }
    }
}

impl<I, V, E> BoundNode<I, V, E>
where
    I: Clone,
{
    /// Runs the node under its policy and fail mode; a fallback is run and awaited here.
    pub(crate) async fn resolve(&self, intent: &Arc<str>, input: I) -> Resolved<V, E> {
        let call = NodeCall {
            input,
            node: self.spec.name.clone(),
            intent: intent.clone(),
            idempotency_key: self.spec.idempotency_key.clone(),
        };
        let op = || (self.op)(call.clone());
        match (self.spec.on_failure, &self.fallback) {
            (OnFailure::Fallback, Some(fallback)) => {
                let fallback = |error: &PolicyError<E>| fallback(call.clone(), error);
                let resolution = self.policy.call(op).fallback(fallback).run().await;
                Resolved::from(resolution, |e| e)
            }
            (OnFailure::Skip, _) => {
                let resolution = self.policy.call(op).fail_open().run().await;
                Resolved::from(resolution, |never| match never {})
            }
            _ => {
                let resolution = self.policy.call(op).run().await;
                Resolved::from(resolution, |never| match never {})
            }
        }
    }
}
