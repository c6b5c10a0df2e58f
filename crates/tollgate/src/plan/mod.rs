//! Fan-out plans with contracts checked before anything runs (S0).
//!
//! A chat worker answers an *intent* by fanning out to *nodes* (a RAG lookup, the weather, a
//! location, …), each behind a policy, and merging their outputs. Which fields a node outputs and
//! which fields an intent needs are declared **once**, in [`Contracts`]: a [`NodeSpec`] lists its
//! output fields and its policy (timeout, retry, breaker by name, [`OnFailure`] mode, paid or
//! not); an [`IntentSpec`] lists its required and optional fields. Which nodes run for an
//! intent, and whether a node is required for it ([`Contracts::is_required`]), are derived from
//! the fields — never declared a second time, so they cannot drift.
//!
//! # Checked when the plan is built
//! [`Plan::builder`]`(contracts).node(…).build()` fails with [`InvalidPlan`] listing **every**
//! [`Problem`] at once, each naming its intent, node and field: a required (or optional) field
//! that no node produces; a field output by two nodes of one intent (a merge conflict); a node
//! that no intent uses; a paid node without an idempotency key; and, on the implementation side,
//! a node without an implementation, an implementation of an undeclared node, or a missing or
//! unused fallback. The contracts can come from a TOML file ([`Contracts::from_toml`], feature
//! `toml`), which `tollgate plan check FILE` validates in CI.
//!
//! # Guarantees when an intent runs
//! - The intent's nodes run **concurrently inside the caller's task**: a run takes as long as
//!   its slowest node, not the sum. Each runs under its own policy, and a node declared
//!   `on_failure = fallback` has its fallback **run and awaited**, reported `fallback_success`.
//! - The [`IntentReport`] has the merged fields, one [`NodeReport`] per node (status `success`,
//!   `fallback_success`, `skipped` or `failed`, duration, errors), the missing required and
//!   missing optional fields, and a status: `complete`, `degraded` (only optional fields
//!   missing) or `failed` (a required field missing; [`IntentReport::check`] names them).
//! - A node that returns a field it did not declare has its whole output rejected and is
//!   reported `failed` with the field named: a contract breach is never dropped silently.
//!
//! # Concurrency and cancellation
//! A [`Plan`] is `Send + Sync`: share one behind an `Arc` and run intents from any number of
//! tasks. Runs share nothing but the nodes' breakers, taken by name from a breaker
//! [`Registry`](crate::breaker::Registry) — one breaker per name however many runs race, so
//! failures from every run count together. Nothing is spawned: **dropping a run's future
//! cancels every node in flight** (and any fallback), releasing breaker permits without counting
//! them; nothing keeps running in the background.
//!
//! # Example
//! ```
//! use tollgate::plan::{Contracts, IntentSpec, IntentStatus, NodeSpec, OnFailure, Outputs, Plan};
//! use tollgate::policy::Status;
//!
//! #[derive(Debug)]
//! struct Down;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let contracts = Contracts::new()
//!     .node(NodeSpec::new("weather").outputs(["weather"]).on_failure(OnFailure::Fallback))
//!     .node(NodeSpec::new("location").outputs(["city", "country"]))
//!     .node(NodeSpec::new("news").outputs(["news"]).on_failure(OnFailure::Skip))
//!     .intent(IntentSpec::new("trip").required(["weather", "city"]).optional(["news"]));
//! assert!(contracts.is_required("location", "trip"));
//! assert!(!contracts.is_required("news", "trip"));
//!
//! let plan = Plan::builder(contracts)
//!     .node("weather", |_call| async { Err(Down) })
//!     .fallback("weather", |_call, _error| async { Ok(Outputs::one("weather", "sunny (cached)")) })
//!     .node("location", |_call| async {
//!         Ok(Outputs::new().with("city", "Busan").with("country", "KR"))
//!     })
//!     .node("news", |_call| async { Err(Down) })
//!     .build()
//!     .unwrap();
//!
//! let answer = plan.run("trip", ()).await.unwrap();
//! assert_eq!(answer.status, IntentStatus::Degraded); // only the optional `news` is missing
//! assert_eq!(answer.node("weather").unwrap().status, Status::FallbackSuccess);
//! assert_eq!(answer.field("weather"), Some(&"sunny (cached)"));
//! assert_eq!(answer.field("city"), Some(&"Busan"));
//! assert_eq!(answer.missing_optional, vec!["news".into()]);
//! # }
//! ```
//!
//! Contract drift is caught before anything runs:
//! ```
//! use tollgate::plan::{Contracts, IntentSpec, NodeSpec};
//!
//! let drifted = Contracts::new()
//!     .node(NodeSpec::new("weather").outputs(["weather"]))
//!     .intent(IntentSpec::new("trip").required(["weather", "city"]));
//! let problems: Vec<String> = drifted.problems().iter().map(|p| p.to_string()).collect();
//! assert_eq!(problems, ["intent \"trip\" requires field \"city\" but no node produces it"]);
//! ```

mod build;
mod contracts;
#[cfg(feature = "toml")]
mod file;
mod join;
mod metrics;
mod node;
mod outputs;
mod problem;
mod report;
mod run;
mod spec;

use std::fmt;
use std::sync::Arc;

pub use build::PlanBuilder;
pub use contracts::Contracts;
#[cfg(feature = "toml")]
pub use file::ContractsFileError;
pub use node::NodeCall;
pub use outputs::Outputs;
pub use problem::{InvalidPlan, Problem};
pub use report::{IntentReport, IntentStatus, MissingRequired, NodeReport, UnknownIntent};
pub use spec::{IntentSpec, NodeSpec, OnFailure, RetrySpec};

use metrics::RunMetrics;
use node::BoundNode;

/// Validated contracts bound to node implementations and policies; run an intent with
/// [`run`](Plan::run). `I` is the input every node gets, `V` the type of field values, `E` the
/// nodes' error type.
pub struct Plan<I, V, E> {
    contracts: Contracts,
    nodes: Vec<BoundNode<I, V, E>>,
    intents: Vec<IntentPlan>,
}

/// An intent as it runs: the nodes that output its fields (derived), and its fields.
struct IntentPlan {
    name: Arc<str>,
    nodes: Vec<NodeRef>,
    required: Vec<Arc<str>>,
    optional: Vec<Arc<str>>,
    metrics: RunMetrics,
}

/// A node of an intent: its index in the plan, and whether the intent requires it.
#[derive(Clone, Copy)]
struct NodeRef {
    index: usize,
    required: bool,
}

impl<I, V, E> Plan<I, V, E>
where
    I: Clone + Send + Sync + 'static,
    V: Send + 'static,
    E: Send + 'static,
{
    /// Starts binding implementations to `contracts`.
    pub fn builder(contracts: Contracts) -> PlanBuilder<I, V, E> {
        PlanBuilder::new(contracts)
    }
}

impl<I, V, E> Plan<I, V, E> {
    /// The validated contracts.
    pub fn contracts(&self) -> &Contracts {
        &self.contracts
    }

    /// Whether `node` is required for `intent` (derived; see [`Contracts::is_required`]).
    pub fn is_required(&self, node: &str, intent: &str) -> bool {
        self.contracts.is_required(node, intent)
    }

    /// The names of the nodes that run for `intent`, in declaration order (empty when the
    /// intent is unknown).
    pub fn nodes_of(&self, intent: &str) -> Vec<&str> {
        let Some(plan) = self.intents.iter().find(|plan| &*plan.name == intent) else {
            return Vec::new();
        };
        plan.nodes
            .iter()
            .filter_map(|node| self.nodes.get(node.index))
            .map(|node| &*node.spec.name)
            .collect()
    }
}

impl<I, V, E> fmt::Debug for Plan<I, V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("contracts", &self.contracts)
            .finish_non_exhaustive()
    }
}
