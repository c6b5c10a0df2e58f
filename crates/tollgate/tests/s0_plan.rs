//! S0, defects 2 and 3 at the level of a whole fan-out: contracts declared in two places drifted
//! (an intent's required field was produced by no node), and a node's fallback was never run.
//! Each naive variant is replayed and shown to have the defect; then the plan prevents it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/plan.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::{Calls, Does, Down, answers, fails, names, trip, trip_plan};
use tollgate::breaker::Registry;
use tollgate::plan::{Contracts, IntentSpec, IntentStatus, NodeSpec, Outputs, Plan, Problem};
use tollgate::policy::{PolicyError, Status};

/// The nodes' own code: which fields each really outputs.
const NODE_OUTPUTS: [(&str, &[&str]); 3] = [
    ("waste_rag", &["disposal_rules"]),
    ("weather", &["weather"]),
    ("character", &["character_context"]),
];

/// `node_policy.py`: a node-level "required" flag, for every intent at once.
const NAIVE_NODE_REQUIRED: [(&str, bool); 3] =
    [("waste_rag", true), ("weather", true), ("character", false)];

/// `aggregator_node.py`: required fields per intent, written down a second time — with
/// `weather_context`, a name no node outputs.
const NAIVE_INTENT_REQUIRED: [(&str, &[&str]); 2] = [
    ("waste", &["disposal_rules"]),
    ("outing", &["weather_context", "character_context"]),
];

/// What the naive code checked: each table on its own (the nodes exist, no intent is empty).
fn naive_validation() -> Vec<String> {
    let mut errors = Vec::new();
    for (node, _) in NAIVE_NODE_REQUIRED {
        if !NODE_OUTPUTS.iter().any(|(n, _)| *n == node) {
            errors.push(format!("unknown node {node}"));
        }
    }
    for (intent, fields) in NAIVE_INTENT_REQUIRED {
        if fields.is_empty() {
            errors.push(format!("intent {intent} requires nothing"));
        }
    }
    errors
}

/// The naive aggregator: runs every node, then compares the fields with its own table.
fn naive_missing_required(intent: &str) -> Vec<&'static str> {
    let produced: BTreeSet<&str> = NODE_OUTPUTS
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    let required = NAIVE_INTENT_REQUIRED
        .iter()
        .find(|(i, _)| *i == intent)
        .unwrap()
        .1;
    required
        .iter()
        .copied()
        .filter(|f| !produced.contains(f))
        .collect()
}

/// The same declarations, once, as contracts.
fn contracts_from_the_same_declarations() -> Contracts {
    let mut contracts = Contracts::new();
    for (node, outputs) in NODE_OUTPUTS {
        contracts = contracts.node(NodeSpec::new(node).outputs(outputs.iter().copied()));
    }
    for (intent, required) in NAIVE_INTENT_REQUIRED {
        contracts = contracts.intent(IntentSpec::new(intent).required(required.iter().copied()));
    }
    contracts
}

#[tokio::test]
async fn s0_plan_contract_drift_passes_the_naive_checks_and_is_caught_when_the_plan_is_built() {
    // Naive: every check passes, and the drift shows up only when the intent runs —
    // every node succeeded, and the answer still lacks a required field.
    assert_eq!(naive_validation(), Vec::<String>::new());
    assert_eq!(naive_missing_required("outing"), ["weather_context"]);
    // The two sources of truth disagree: the node-level flag says `character` is never
    // required, yet `outing` requires its field; it says `waste_rag` and `weather` are
    // required everywhere, yet `outing` never uses the rules and no intent uses `weather`.
    let contracts = contracts_from_the_same_declarations();
    let naive: BTreeMap<(&str, &str), bool> = NAIVE_INTENT_REQUIRED
        .iter()
        .flat_map(|(intent, _)| {
            NAIVE_NODE_REQUIRED
                .iter()
                .map(move |(n, r)| ((*n, *intent), *r))
        })
        .collect();
    let derived: BTreeMap<(&str, &str), bool> = naive
        .keys()
        .map(|&(node, intent)| ((node, intent), contracts.is_required(node, intent)))
        .collect();
    let disagreements: Vec<_> = naive
        .iter()
        .filter(|(key, required)| derived[*key] != **required)
        .map(|(key, _)| *key)
        .collect();
    assert_eq!(
        disagreements,
        [
            ("character", "outing"),
            ("waste_rag", "outing"),
            ("weather", "outing"),
            ("weather", "waste")
        ]
    );

    // The plan: the same declarations, once. Building fails before anything runs, naming the
    // intent and the field.
    let calls = Calls::default();
    let error = Plan::<(), String, Down>::builder(contracts)
        .node("waste_rag", answers(&calls, &["disposal_rules"]))
        .node("weather", answers(&calls, &["weather"]))
        .node("character", answers(&calls, &["character_context"]))
        .build_in(&Registry::new())
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            Problem::UnusedNode {
                node: "weather".into()
            },
            Problem::Unproduced {
                intent: "outing".into(),
                field: "weather_context".into(),
                required: true
            }
        ]
    );
    assert_eq!(
        error.to_string(),
        "invalid plan (2 problems): node \"weather\" is used by no intent (no intent lists any of \
         its outputs); intent \"outing\" requires field \"weather_context\" but no node produces it"
    );
    assert_eq!(calls.get(), 0);
}

/// The naive executor: on failure in FAIL_FALLBACK mode it records that a fallback "was
/// triggered" and returns — the async fallback is never awaited.
async fn naive_execute(
    node: impl std::future::Future<Output = Result<&'static str, Down>>,
    _fallback: impl std::future::Future<Output = Result<&'static str, Down>>,
    state: &mut BTreeMap<String, String>,
) {
    match node.await {
        Ok(value) => {
            state.insert("weather".into(), value.into());
        }
        Err(_) => {
            state.insert("weather_fallback_triggered".into(), "true".into());
        }
    }
}

#[tokio::test]
async fn s0_plan_fallback_naive_only_sets_a_flag_the_plan_runs_it_and_reports_fallback_success() {
    let naive_fallbacks = Calls::default();
    let counter = naive_fallbacks.clone();
    let mut state = BTreeMap::new();
    naive_execute(
        async { Err(Down("weather")) },
        async move {
            counter.hit();
            Ok("cached")
        },
        &mut state,
    )
    .await;
    assert_eq!(naive_fallbacks.get(), 0, "naive: the fallback never ran");
    assert_eq!(state.get("weather"), None, "naive: no weather at all");
    assert_eq!(
        state.get("weather_fallback_triggered").map(String::as_str),
        Some("true")
    );

    let (w, l, c, fb) = <(Calls, Calls, Calls, Calls)>::default();
    let fallbacks = fb.clone();
    let plan = Plan::builder(trip())
        .node("weather", fails(&w, "weather"))
        .fallback("weather", move |_, error: &PolicyError<Down>| {
            assert_eq!(error, &PolicyError::Inner(Down("weather")));
            let fallbacks = fallbacks.clone();
            async move {
                tokio::task::yield_now().await; // really awaited, not just called
                fallbacks.hit();
                Ok(Outputs::one("weather", "cloudy (cached)".to_owned()))
            }
        })
        .node("location", answers(&l, &["city", "country"]))
        .node("news", answers(&c, &["news"]))
        .build_in(&Registry::new())
        .unwrap();
    let answer = plan.run("trip", ()).await.unwrap();
    assert_eq!(fb.get(), 1);
    let weather = answer.node("weather").unwrap();
    assert_eq!(weather.status, Status::FallbackSuccess);
    assert_eq!(weather.status.as_str(), "fallback_success");
    assert_eq!(weather.error, Some(PolicyError::Inner(Down("weather"))));
    assert_eq!(
        answer.field("weather").map(String::as_str),
        Some("cloudy (cached)")
    );
    assert_eq!(answer.status, IntentStatus::Complete);
}

#[tokio::test]
async fn s0_plan_a_fallback_that_fails_too_keeps_both_errors_and_names_the_missing_field() {
    let (w, l, c) = <(Calls, Calls, Calls)>::default();
    let plan = Plan::builder(trip())
        .node("weather", fails(&w, "weather"))
        .fallback("weather", |_, _| async { Err(Down("weather cache")) })
        .node("location", answers(&l, &["city", "country"]))
        .node("news", answers(&c, &["news"]))
        .build_in(&Registry::new())
        .unwrap();
    let answer = plan.run("trip", ()).await.unwrap();
    let weather = answer.node("weather").unwrap();
    assert_eq!(weather.status, Status::Failed);
    assert_eq!(weather.error, Some(PolicyError::Inner(Down("weather"))));
    assert_eq!(weather.fallback_error, Some(Down("weather cache")));
    assert_eq!(
        answer.check().unwrap_err().to_string(),
        "intent \"trip\" is missing required fields \"weather\" (node \"weather\" failed: \
         weather is down; fallback: weather cache is down)"
    );
}

#[tokio::test]
async fn s0_plan_a_required_node_failing_fails_with_its_fields_an_optional_one_degrades() {
    let weather = Does::Answer(&["weather"]);
    let required_down = trip_plan(weather, Does::Fail("location"), Does::Answer(&["news"]));
    let answer = required_down.plan.run("trip", ()).await.unwrap();
    assert_eq!(answer.status, IntentStatus::Failed);
    assert_eq!(names(&answer.missing_required), ["city"]);
    assert_eq!(
        answer.check().unwrap_err().to_string(),
        "intent \"trip\" is missing required fields \"city\" (node \"location\" failed: location is down)"
    );

    let optional_down = trip_plan(
        weather,
        Does::Answer(&["city", "country"]),
        Does::Fail("news"),
    );
    let answer = optional_down.plan.run("trip", ()).await.unwrap();
    assert_eq!(answer.status, IntentStatus::Degraded);
    assert_eq!(names(&answer.missing_optional), ["news"]);
    assert_eq!(answer.node("news").unwrap().status, Status::Skipped);
    let fields: Vec<&str> = answer.fields.keys().map(|f| &**f).collect();
    assert_eq!(fields, ["city", "country", "weather"]);
    assert!(answer.check().is_ok());
    assert_eq!(optional_down.fallbacks.get(), 0);
}
