//! Validation when a plan is built: every problem at once, each naming its intent, node and
//! field; `is_required` derived from the fields.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/plan.rs"]
mod support;

use std::sync::Arc;

use support::{Calls, Down, answers, trip};
use tollgate::plan::{
    Contracts, IntentSpec, NodeSpec, OnFailure, Outputs, Plan, Problem, RetrySpec,
};

fn a(s: &str) -> Arc<str> {
    Arc::from(s)
}

#[test]
fn every_problem_is_reported_at_once_naming_intent_node_and_field() {
    let contracts = Contracts::new()
        .node(NodeSpec::new("weather").outputs(["weather"]))
        .node(NodeSpec::new("location").outputs(["city", "country"]))
        .node(NodeSpec::new("geo").outputs(["city"]))
        .node(NodeSpec::new("legacy").outputs(["fax"]))
        .node(NodeSpec::new("rag").outputs(["rules"]).paid())
        .intent(
            IntentSpec::new("trip")
                .required(["weather", "city", "airport"])
                .optional(["news"]),
        )
        .intent(IntentSpec::new("waste").required(["rules"]));
    let problems = contracts.problems();
    assert_eq!(
        problems,
        vec![
            Problem::UnusedNode { node: a("legacy") },
            Problem::PaidWithoutIdempotencyKey { node: a("rag") },
            Problem::Unproduced {
                intent: a("trip"),
                field: a("airport"),
                required: true
            },
            Problem::Unproduced {
                intent: a("trip"),
                field: a("news"),
                required: false
            },
            Problem::MergeConflict {
                intent: a("trip"),
                field: a("city"),
                first: a("location"),
                second: a("geo")
            },
        ]
    );
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "node \"legacy\" is used by no intent (no intent lists any of its outputs)",
            "node \"rag\" is a paid call without an idempotency key",
            "intent \"trip\" requires field \"airport\" but no node produces it",
            "intent \"trip\" lists optional field \"news\" but no node produces it",
            "intent \"trip\": field \"city\" is produced by both node \"location\" and node \"geo\" (merge conflict)",
        ]
    );
    let error = contracts.validate().unwrap_err();
    assert_eq!(error.problems(), &problems[..]);
    assert!(
        error
            .to_string()
            .starts_with("invalid plan (5 problems): node \"legacy\"")
    );
}

#[test]
fn is_required_is_derived_from_the_fields_never_declared() {
    let contracts = trip();
    let table = [
        ("weather", "trip", true),
        ("location", "trip", true),
        ("news", "trip", false),
        ("weather", "no-such-intent", false),
        ("no-such-node", "trip", false),
    ];
    for (node, intent, required) in table {
        assert_eq!(
            contracts.is_required(node, intent),
            required,
            "{node} for {intent}"
        );
    }
    let intent = contracts.find_intent("trip").unwrap();
    let nodes: Vec<&str> = contracts.nodes_for(intent).map(|n| &*n.name).collect();
    assert_eq!(nodes, ["weather", "location", "news"]);
    let producers: Vec<&str> = contracts.producers("city").map(|n| &*n.name).collect();
    assert_eq!(producers, ["location"]);
}

#[test]
fn a_conflict_exists_only_between_nodes_of_one_intent() {
    // `geo` and `location` both output `city`, but never run for the same intent.
    let contracts = Contracts::new()
        .node(NodeSpec::new("location").outputs(["city", "country"]))
        .node(NodeSpec::new("geo").outputs(["city", "lat"]))
        .intent(IntentSpec::new("passport").required(["country"]))
        .intent(IntentSpec::new("map").required(["lat"]));
    assert_eq!(contracts.problems(), vec![]);
}

#[test]
fn duplicates_empty_intents_and_invalid_policies_are_problems() {
    let zero_retry = RetrySpec {
        attempts: 0,
        backoff: std::time::Duration::from_millis(1),
        max_backoff: std::time::Duration::from_millis(1),
    };
    let contracts = Contracts::new()
        .node(NodeSpec::new("a").outputs(["x", "x"]).retry(zero_retry))
        .node(
            NodeSpec::new("a")
                .outputs(["y"])
                .timeout(std::time::Duration::ZERO),
        )
        .intent(IntentSpec::new("i").required(["x", "y"]).optional(["x"]))
        .intent(IntentSpec::new("empty"));
    let lines: Vec<String> = contracts
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "node \"a\" is declared twice",
            "node \"a\" lists output field \"x\" twice",
            "node \"a\" has an invalid policy: retry attempts must be at least 1",
            "node \"a\" has an invalid policy: the timeout is zero",
            "intent \"i\" lists field \"x\" twice",
            "intent \"empty\" has no fields",
        ]
    );
    assert_eq!(
        Contracts::new().problems(),
        vec![Problem::NoIntents],
        "an empty plan is not a valid one"
    );
}

#[test]
fn implementation_problems_are_reported_with_the_contract_ones() {
    let calls = Calls::default();
    let contracts = trip().node(NodeSpec::new("rag").outputs(["rules"]));
    let error = Plan::<(), String, Down>::builder(contracts)
        .node("location", answers(&calls, &["city", "country"]))
        .node("location", answers(&calls, &["city"]))
        .node("news", answers(&calls, &["news"]))
        .node("rag", answers(&calls, &["rules"]))
        .node("typo", answers(&calls, &["weather"]))
        .fallback("news", |_, _| async { Ok(Outputs::new()) })
        .build()
        .unwrap_err();
    let lines: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "node \"rag\" is used by no intent (no intent lists any of its outputs)",
            "node \"location\" has two implementations",
            "an implementation was given for node \"typo\", which is not declared",
            "node \"weather\" is declared but has no implementation",
            "node \"news\" has a fallback but is not declared on_failure = \"fallback\"",
            "node \"weather\" is declared on_failure = \"fallback\" but has no fallback",
        ]
    );
    assert_eq!(calls.get(), 0, "nothing runs when the plan is invalid");
}

#[test]
fn a_valid_plan_builds_and_knows_its_nodes() {
    let calls = Calls::default();
    let plan = Plan::<(), String, Down>::builder(trip())
        .node("weather", answers(&calls, &["weather"]))
        .fallback("weather", |_, _| async {
            Ok(Outputs::one("weather", "cached".to_owned()))
        })
        .node("location", answers(&calls, &["city", "country"]))
        .node("news", answers(&calls, &["news"]))
        .build()
        .unwrap();
    assert_eq!(plan.nodes_of("trip"), ["weather", "location", "news"]);
    assert!(plan.nodes_of("nope").is_empty());
    assert!(plan.is_required("location", "trip"));
    assert!(!plan.is_required("news", "trip"));
    assert_eq!(plan.contracts().nodes().len(), 3);
    assert_eq!(
        plan.contracts().find_node("news").unwrap().on_failure,
        OnFailure::Skip
    );
}
