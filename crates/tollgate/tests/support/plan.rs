//! Helpers for the plan and S0 plan tests, included with `#[path]`: the S0 trip contracts and
//! nodes that succeed, fail or count their calls.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate::plan::{Contracts, IntentSpec, NodeCall, NodeSpec, OnFailure, Outputs};

/// A node's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down(pub &'static str);

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is down", self.0)
    }
}

impl std::error::Error for Down {}

/// S0's trip: weather (fallback) and location required, news optional (skip).
pub fn trip() -> Contracts {
    Contracts::new()
        .node(
            NodeSpec::new("weather")
                .outputs(["weather"])
                .on_failure(OnFailure::Fallback),
        )
        .node(NodeSpec::new("location").outputs(["city", "country"]))
        .node(
            NodeSpec::new("news")
                .outputs(["news"])
                .on_failure(OnFailure::Skip),
        )
        .intent(
            IntentSpec::new("trip")
                .required(["weather", "city"])
                .optional(["news"]),
        )
}

/// A count of calls, shared with a node.
#[derive(Clone, Debug, Default)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub fn hit(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A node answering `fields` (each with the value `"<field>-value"`), counting its calls.
pub fn answers<I>(
    calls: &Calls,
    fields: &'static [&'static str],
) -> impl Fn(NodeCall<I>) -> std::future::Ready<Result<Outputs<String>, Down>> + Send + Sync + 'static
{
    let calls = calls.clone();
    move |_| {
        calls.hit();
        let outputs = fields.iter().map(|f| (*f, format!("{f}-value"))).collect();
        std::future::ready(Ok(outputs))
    }
}

/// A node that always fails, counting its calls.
pub fn fails<I>(
    calls: &Calls,
    name: &'static str,
) -> impl Fn(NodeCall<I>) -> std::future::Ready<Result<Outputs<String>, Down>> + Send + Sync + 'static
{
    let calls = calls.clone();
    move |_| {
        calls.hit();
        std::future::ready(Err(Down(name)))
    }
}

/// Field names of a report list, as strings.
pub fn names(fields: &[Arc<str>]) -> Vec<&str> {
    fields.iter().map(|f| &**f).collect()
}
