//! Helpers for the plan and S0 plan tests, included with `#[path]`: the S0 trip contracts and
//! nodes that succeed, fail or count their calls.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tollgate::breaker::Registry;
use tollgate::plan::{Contracts, IntentSpec, NodeCall, NodeSpec, OnFailure, Outputs, Plan};

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

/// What a fake node does when called.
#[derive(Clone, Copy, Debug)]
pub enum Does {
    /// Answers these fields, each with the value `"<field>-value"`.
    Answer(&'static [&'static str]),
    /// Fails with `Down(name)`.
    Fail(&'static str),
}

/// A node doing `does`, counting its calls.
pub fn node<I>(
    calls: &Calls,
    does: Does,
) -> impl Fn(NodeCall<I>) -> std::future::Ready<Result<Outputs<String>, Down>> + Send + Sync + 'static
{
    let calls = calls.clone();
    move |_| {
        calls.hit();
        std::future::ready(match does {
            Does::Answer(fields) => Ok(fields.iter().map(|f| (*f, format!("{f}-value"))).collect()),
            Does::Fail(name) => Err(Down(name)),
        })
    }
}

/// A node answering `fields`, counting its calls.
pub fn answers<I>(
    calls: &Calls,
    fields: &'static [&'static str],
) -> impl Fn(NodeCall<I>) -> std::future::Ready<Result<Outputs<String>, Down>> + Send + Sync + 'static
{
    node(calls, Does::Answer(fields))
}

/// A node that always fails, counting its calls.
pub fn fails<I>(
    calls: &Calls,
    name: &'static str,
) -> impl Fn(NodeCall<I>) -> std::future::Ready<Result<Outputs<String>, Down>> + Send + Sync + 'static
{
    node(calls, Does::Fail(name))
}

/// The trip plan over nodes that do what they are told, with every call counted.
pub struct Trip {
    pub plan: Plan<(), String, Down>,
    pub weather: Calls,
    pub location: Calls,
    pub news: Calls,
    /// Runs of the weather fallback (which answers `"cached"`).
    pub fallbacks: Calls,
}

/// [`trip`]'s contracts bound to nodes doing `weather`, `location` and `news`.
pub fn trip_plan(weather: Does, location: Does, news: Does) -> Trip {
    let (w, l, n, fb) = <(Calls, Calls, Calls, Calls)>::default();
    let fallbacks = fb.clone();
    let plan = Plan::builder(trip())
        .node("weather", node(&w, weather))
        .fallback("weather", move |_, _| {
            fallbacks.hit();
            std::future::ready(Ok(Outputs::one("weather", "cached".to_owned())))
        })
        .node("location", node(&l, location))
        .node("news", node(&n, news))
        .build_in(&Registry::new())
        .unwrap();
    Trip {
        plan,
        weather: w,
        location: l,
        news: n,
        fallbacks: fb,
    }
}

/// Field names of a report list, as strings.
pub fn names(fields: &[Arc<str>]) -> Vec<&str> {
    fields.iter().map(|f| &**f).collect()
}
