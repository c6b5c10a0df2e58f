//! Binding implementations to the declarations, and validating both at once.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use super::contracts::Contracts;
use super::metrics::RunMetrics;
use super::node::{BoundNode, BoxFuture, FallbackFn, NodeCall, NodeFn};
use super::outputs::Outputs;
use super::problem::{InvalidPlan, Problem};
use super::spec::{NodeSpec, OnFailure};
use super::{IntentPlan, NodeRef, Plan};
use crate::breaker::Registry;
use crate::policy::{Backoff, Policy, PolicyError, Retry};

/// Builds a [`Plan`]: the contracts, then one implementation per node (and a fallback per
/// `on_failure = fallback` node). [`build`](Self::build) reports every problem at once.
pub struct PlanBuilder<I, V, E> {
    contracts: Contracts,
    ops: Vec<(Arc<str>, NodeFn<I, V, E>)>,
    fallbacks: Vec<(Arc<str>, FallbackFn<I, V, E>)>,
    _types: PhantomData<fn(I) -> (V, E)>,
}

impl<I, V, E> PlanBuilder<I, V, E>
where
    I: Clone + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
{
    pub(crate) fn new(contracts: Contracts) -> Self {
        PlanBuilder {
            contracts,
            ops: Vec::new(),
            fallbacks: Vec::new(),
            _types: PhantomData,
        }
    }

    /// The implementation of the node `name`, called once per attempt.
    pub fn node<F, Fut>(mut self, name: impl Into<Arc<str>>, op: F) -> Self
    where
        F: Fn(NodeCall<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outputs<V>, E>> + Send + 'static,
    {
        let op: NodeFn<I, V, E> = Arc::new(move |call| Box::pin(op(call)) as BoxFuture<_>);
        self.ops.push((name.into(), op));
        self
    }

    /// The fallback of the node `name`, run and awaited when the node fails; it gets the
    /// node's error.
    pub fn fallback<F, Fut>(mut self, name: impl Into<Arc<str>>, fallback: F) -> Self
    where
        F: Fn(NodeCall<I>, &PolicyError<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outputs<V>, E>> + Send + 'static,
    {
        let fallback: FallbackFn<I, V, E> =
            Arc::new(move |call: NodeCall<I>, error: &PolicyError<E>| {
                Box::pin(fallback(call, error)) as BoxFuture<_>
            });
        self.fallbacks.push((name.into(), fallback));
        self
    }

    /// Validates and builds the plan, taking breakers from the process-wide
    /// [`Registry::global`].
    ///
    /// # Errors
    /// [`InvalidPlan`] with every problem of the contracts and of the implementations.
    pub fn build(self) -> Result<Plan<I, V, E>, InvalidPlan> {
        self.build_in(Registry::global())
    }

    /// Validates and builds the plan, taking each node's breaker from `breakers` by name.
    ///
    /// # Errors
    /// [`InvalidPlan`] with every problem of the contracts and of the implementations.
    pub fn build_in(mut self, breakers: &Registry) -> Result<Plan<I, V, E>, InvalidPlan> {
        let mut problems = self.contracts.problems();
        problems.extend(self.binding_problems());
        InvalidPlan::check(problems)?;
        let mut ops: HashMap<_, _> = self.ops.drain(..).collect();
        let mut fallbacks: HashMap<_, _> = self.fallbacks.drain(..).collect();
        let nodes = self
            .contracts
            .nodes()
            .iter()
            .map(|spec| {
                let missing = || Problem::MissingImplementation {
                    node: spec.name.clone(),
                };
                Ok(BoundNode {
                    policy: policy(spec, breakers),
                    op: ops.remove(&spec.name).ok_or_else(missing)?,
                    fallback: fallbacks.remove(&spec.name),
                    spec: spec.clone(),
                })
            })
            .collect::<Result<Vec<_>, Problem>>()
            .map_err(|problem| InvalidPlan::from(vec![problem]))?;
        let intents = intent_plans(&self.contracts);
        Ok(Plan {
            contracts: self.contracts,
            nodes,
            intents,
        })
    }

    fn binding_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let implemented = |name: &str| self.ops.iter().any(|(n, _)| &**n == name);
        for (i, (name, _)) in self.ops.iter().enumerate() {
            if self.contracts.find_node(name).is_none() {
                problems.push(Problem::UndeclaredImplementation { node: name.clone() });
            } else if self.ops[..i].iter().any(|(n, _)| n == name) {
                problems.push(Problem::DuplicateImplementation { node: name.clone() });
            }
        }
        for node in self.contracts.nodes() {
            if !implemented(&node.name) {
                problems.push(Problem::MissingImplementation {
                    node: node.name.clone(),
                });
            }
        }
        problems.extend(self.fallback_problems());
        problems
    }

    fn fallback_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let has_fallback = |name: &str| self.fallbacks.iter().any(|(n, _)| &**n == name);
        for (name, _) in &self.fallbacks {
            match self.contracts.find_node(name) {
                None => problems.push(Problem::UndeclaredImplementation { node: name.clone() }),
                Some(node) if node.on_failure != OnFailure::Fallback => {
                    problems.push(Problem::UnusedFallback { node: name.clone() });
                }
                Some(_) => {}
            }
        }
        for node in self.contracts.nodes() {
            if node.on_failure == OnFailure::Fallback && !has_fallback(&node.name) {
                problems.push(Problem::MissingFallback {
                    node: node.name.clone(),
                });
            }
        }
        problems
    }
}

impl<I, V, E> fmt::Debug for PlanBuilder<I, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanBuilder")
            .field("contracts", &self.contracts)
            .finish_non_exhaustive()
    }
}

/// The policy a node's declaration asks for.
fn policy(spec: &NodeSpec, breakers: &Registry) -> Policy {
    let mut policy = Policy::builder(spec.name.clone());
    if let Some(timeout) = spec.timeout {
        policy = policy.timeout(timeout);
    }
    if let Some(retry) = spec.retry {
        let backoff = Backoff::exponential(retry.backoff, retry.max_backoff);
        policy = policy.retry(Retry::new(retry.attempts, backoff));
    }
    if let Some(name) = &spec.breaker {
        policy = policy.breaker(breakers.get(name));
    }
    policy.build()
}

/// For each intent, the nodes that run for it (derived from the fields) and whether each is
/// required.
fn intent_plans(contracts: &Contracts) -> Vec<IntentPlan> {
    contracts
        .intents()
        .iter()
        .map(|intent| {
            let nodes = contracts
                .nodes()
                .iter()
                .enumerate()
                .filter(|(_, node)| node.outputs.iter().any(|f| intent.uses(f)))
                .map(|(index, node)| NodeRef {
                    index,
                    required: contracts.is_required(&node.name, &intent.name),
                })
                .collect();
            IntentPlan {
                name: intent.name.clone(),
                nodes,
                required: intent.required.clone(),
                optional: intent.optional.clone(),
                metrics: RunMetrics::new(&intent.name),
            }
        })
        .collect()
}
