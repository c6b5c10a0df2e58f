//! S0's chat: `POST /chat` fans a message out to the nodes its intent needs (weather, location,
//! character, a RAG lookup), each behind a breaker and a policy, and merges their fields with
//! [`tollgate::plan`]. The contracts live in one file ([`DEFAULT_PLAN`], `chat/plan.toml`),
//! validated when the service starts: a service with an invalid plan does not start, and the
//! error names the intent, node and field.
//!
//! The nodes are fakes ([`FakeNodes`]) whose failures and latency tests inject at run time.

pub mod nodes;
pub mod routes;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use tollgate::breaker::Registry;
use tollgate::plan::{Contracts, ContractsFileError, IntentReport, InvalidPlan, Plan};

pub use nodes::{FakeNode, FakeNodes, NodeFailure};

/// The chat's contracts as shipped (`crates/tollgate-demo/src/chat/plan.toml`).
pub const DEFAULT_PLAN: &str = include_str!("plan.toml");

/// What every node is called with.
#[derive(Clone, Debug)]
pub struct ChatInput {
    /// The user's message.
    pub message: Arc<str>,
}

/// The chat's plan, its fake nodes and their breakers.
#[derive(Clone)]
pub struct Chat {
    plan: Arc<Plan<ChatInput, Value, NodeFailure>>,
    nodes: Arc<FakeNodes>,
    breakers: Arc<Registry>,
}

/// Why the chat's plan was refused at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatPlanError {
    /// The contracts file cannot be read as one.
    #[error("chat plan: {0}")]
    File(#[from] ContractsFileError),
    /// The contracts, or the nodes bound to them, are invalid.
    #[error("chat plan: {0}")]
    Invalid(#[from] InvalidPlan),
}

impl Chat {
    /// The chat over the contracts in `plan_toml`, bound to fresh fake nodes, with breakers
    /// from a registry of its own.
    ///
    /// # Errors
    /// [`ChatPlanError`], naming every problem of the plan.
    pub fn new(plan_toml: &str) -> Result<Chat, ChatPlanError> {
        let contracts = Contracts::from_toml(plan_toml)?;
        let nodes = Arc::new(FakeNodes::default());
        let breakers = Arc::new(Registry::new());
        let mut builder = Plan::builder(contracts);
        for (name, node) in nodes.implementations() {
            builder = builder.node(name, move |call| FakeNodes::run(node.clone(), call));
        }
        let fallback = nodes.weather_fallback();
        let plan = builder
            .fallback("weather", move |call, _error| fallback(call))
            .build_in(&breakers)?;
        Ok(Chat {
            plan: Arc::new(plan),
            nodes,
            breakers,
        })
    }

    /// The fake nodes, to inject failures and latency.
    pub fn nodes(&self) -> &FakeNodes {
        &self.nodes
    }

    /// The nodes' breakers.
    pub fn breakers(&self) -> &Registry {
        &self.breakers
    }

    /// The plan.
    pub fn plan(&self) -> &Plan<ChatInput, Value, NodeFailure> {
        &self.plan
    }

    /// Runs `intent` for `message`; `None` when the plan has no such intent.
    pub async fn answer(
        &self,
        intent: &str,
        message: &str,
    ) -> Option<IntentReport<Value, NodeFailure>> {
        let input = ChatInput {
            message: Arc::from(message),
        };
        self.plan.run(intent, input).await.ok()
    }

    /// The plan's intents, in name order.
    pub fn intents(&self) -> Vec<&str> {
        let intents = self.plan.contracts().intents();
        intents.iter().map(|i| &*i.name).collect()
    }
}

impl fmt::Debug for Chat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chat")
            .field("intents", &self.intents())
            .finish_non_exhaustive()
    }
}
