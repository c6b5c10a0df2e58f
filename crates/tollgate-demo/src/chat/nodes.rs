//! The chat's fake nodes — weather, location, character and a RAG lookup — whose failures and
//! latency tests inject at run time, and the weather node's fallback (a cached forecast).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tollgate::plan::{NodeCall, Outputs};

use super::ChatInput;

/// The names of the fake nodes, as in the plan.
pub const NODE_NAMES: [&str; 4] = ["weather", "location", "character", "rag"];

/// A fake node's error: a failure injected by a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFailure {
    /// The node that failed.
    pub node: &'static str,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed (injected)", self.node)
    }
}

impl std::error::Error for NodeFailure {}

/// One fake node: answers after its latency, or fails when told to.
#[derive(Debug)]
pub struct FakeNode {
    name: &'static str,
    latency_ms: AtomicU64,
    failing: AtomicBool,
    undeclared: AtomicBool,
    calls: AtomicUsize,
}

impl FakeNode {
    fn new(name: &'static str) -> Self {
        FakeNode {
            name,
            latency_ms: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            undeclared: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        }
    }

    /// Every call fails from now on (`true`) or answers again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Every call takes `latency` from now on.
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Every call also returns a field the node does not declare (a contract breach).
    pub fn set_undeclared_field(&self, on: bool) {
        self.undeclared.store(on, Ordering::SeqCst);
    }

    /// How many times it was called (attempts, retries included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn call(&self, message: &str) -> Result<Outputs<Value>, NodeFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let latency = self.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(NodeFailure { node: self.name });
        }
        let mut outputs = answer(self.name, message);
        if self.undeclared.load(Ordering::SeqCst) {
            outputs.insert("debug_trace", json!("not in the contract"));
        }
        Ok(outputs)
    }
}

/// What each fake node answers.
fn answer(node: &str, message: &str) -> Outputs<Value> {
    match node {
        "weather" => Outputs::one("weather", json!("sunny, 21°C")),
        "location" => Outputs::new()
            .with("city", json!("Seoul"))
            .with("country", json!("KR")),
        "character" => Outputs::one(
            "character",
            json!(format!("Eco the raccoon hears: {message}")),
        ),
        _ => Outputs::one(
            "disposal_rules",
            json!("rinse it, remove the label, recycle with plastics"),
        ),
    }
}

/// The four fake nodes, and how often the weather fallback ran.
#[derive(Debug)]
pub struct FakeNodes {
    nodes: [Arc<FakeNode>; 4],
    weather_fallbacks: Arc<AtomicUsize>,
}

impl Default for FakeNodes {
    fn default() -> Self {
        FakeNodes {
            nodes: NODE_NAMES.map(|name| Arc::new(FakeNode::new(name))),
            weather_fallbacks: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl FakeNodes {
    /// The node named `name` (one of [`NODE_NAMES`]).
    pub fn get(&self, name: &str) -> Option<&FakeNode> {
        self.nodes.iter().find(|n| n.name == name).map(|n| &**n)
    }

    /// How many times the weather fallback ran.
    pub fn weather_fallbacks(&self) -> usize {
        self.weather_fallbacks.load(Ordering::SeqCst)
    }

    /// The implementation of each node, by name, for the plan builder.
    pub(crate) fn implementations(&self) -> impl Iterator<Item = (&'static str, Arc<FakeNode>)> {
        self.nodes.iter().map(|node| (node.name, node.clone()))
    }

    /// The weather node's fallback: a cached forecast, counted.
    pub(crate) fn weather_fallback(
        &self,
    ) -> impl Fn(NodeCall<ChatInput>) -> std::future::Ready<Result<Outputs<Value>, NodeFailure>>
    + Send
    + Sync
    + 'static {
        let ran = self.weather_fallbacks.clone();
        move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(Outputs::one(
                "weather",
                json!("cloudy (cached forecast)"),
            )))
        }
    }

    /// Runs `node` for a call (the plan builder's per-node closure).
    pub(crate) async fn run(
        node: Arc<FakeNode>,
        call: NodeCall<ChatInput>,
    ) -> Result<Outputs<Value>, NodeFailure> {
        node.call(&call.input().message).await
    }
}
