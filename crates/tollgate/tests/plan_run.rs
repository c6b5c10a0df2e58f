//! Running an intent: nodes concurrently under their policies, fields merged, per-node reports,
//! missing required vs optional fields, and the overall status.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/plan.rs"]
mod support;

use std::time::Duration;

use support::{Calls, Does, Down, answers, fails, names, trip, trip_plan};
use tokio::time::Instant;
use tollgate::breaker::{BreakerConfig, Registry, SlidingWindow, State};
use tollgate::plan::{
    Contracts, IntentSpec, IntentStatus, NodeSpec, OnFailure, Outputs, Plan, RetrySpec,
};
use tollgate::policy::{PolicyError, Status};

#[tokio::test(start_paused = true)]
async fn five_nodes_of_100ms_each_finish_together_at_100ms() {
    let mut contracts = Contracts::new();
    let mut intent = IntentSpec::new("all");
    for i in 0..5 {
        let field = format!("f{i}");
        contracts = contracts.node(NodeSpec::new(format!("n{i}")).outputs([field.clone()]));
        intent = intent.required([field]);
    }
    let mut builder = Plan::<(), u32, Down>::builder(contracts.intent(intent));
    for i in 0..5u32 {
        builder = builder.node(format!("n{i}"), move |_| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Outputs::one(format!("f{i}"), i))
        });
    }
    let plan = builder.build_in(&Registry::new()).unwrap();
    let started = Instant::now();
    let answer = plan.run("all", ()).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(100), "not 500 ms");
    assert_eq!(answer.status, IntentStatus::Complete);
    let values: Vec<u32> = answer.fields.values().copied().collect();
    assert_eq!(values, [0, 1, 2, 3, 4]);
    for report in &answer.nodes {
        assert_eq!(report.duration, Duration::from_millis(100));
        assert_eq!(report.status, Status::Success);
    }
}

#[tokio::test]
async fn a_complete_answer_has_every_field_and_one_report_per_node() {
    let trip = trip_plan(
        Does::Answer(&["weather"]),
        Does::Answer(&["city", "country"]),
        Does::Answer(&["news"]),
    );
    let plan = &trip.plan;
    let answer = plan.run("trip", ()).await.unwrap();
    assert_eq!(answer.status, IntentStatus::Complete);
    let fields: Vec<(&str, &str)> = answer.fields.iter().map(|(k, v)| (&**k, &**v)).collect();
    assert_eq!(
        fields,
        [
            ("city", "city-value"),
            ("country", "country-value"),
            ("news", "news-value"),
            ("weather", "weather-value")
        ]
    );
    let nodes: Vec<(&str, Status, bool)> = answer
        .nodes
        .iter()
        .map(|r| (&*r.node, r.status, r.required))
        .collect();
    assert_eq!(
        nodes,
        [
            ("weather", Status::Success, true),
            ("location", Status::Success, true),
            ("news", Status::Success, false)
        ]
    );
    assert!(answer.missing_required.is_empty() && answer.missing_optional.is_empty());
    let calls = [&trip.weather, &trip.location, &trip.news, &trip.fallbacks].map(Calls::get);
    assert_eq!(calls, [1, 1, 1, 0]);
    assert!(answer.check().is_ok());
}

#[tokio::test]
async fn an_optional_node_failing_degrades_the_answer() {
    let plan = trip_plan(
        Does::Answer(&["weather"]),
        Does::Answer(&["city", "country"]),
        Does::Fail("news"),
    )
    .plan;
    let answer = plan.run("trip", ()).await.unwrap();
    assert_eq!(answer.status, IntentStatus::Degraded);
    assert_eq!(names(&answer.missing_optional), ["news"]);
    assert!(answer.missing_required.is_empty());
    let news = answer.node("news").unwrap();
    assert_eq!(news.status, Status::Skipped);
    assert_eq!(news.error, Some(PolicyError::Inner(Down("news"))));
    assert_eq!(news.error_message().as_deref(), Some("news is down"));
    assert!(answer.check().is_ok(), "degraded is still an answer");
}

#[tokio::test]
async fn a_required_node_failing_fails_the_answer_naming_the_missing_fields() {
    let plan = trip_plan(
        Does::Answer(&["weather"]),
        Does::Fail("location"),
        Does::Answer(&["news"]),
    )
    .plan;
    let answer = plan.run("trip", ()).await.unwrap();
    assert_eq!(answer.status, IntentStatus::Failed);
    assert_eq!(names(&answer.missing_required), ["city"]);
    assert!(answer.missing_optional.is_empty());
    assert_eq!(answer.node("location").unwrap().status, Status::Failed);
    let error = answer.check().unwrap_err();
    assert_eq!(names(&error.fields), ["city"]);
    assert_eq!(
        error.to_string(),
        "intent \"trip\" is missing required fields \"city\" (node \"location\" failed: location is down)"
    );
}

#[tokio::test]
async fn a_field_the_node_did_not_declare_is_an_error_not_a_silent_drop() {
    // `location` declares city and country, and returns a zip code too.
    let plan = trip_plan(
        Does::Answer(&["weather"]),
        Does::Answer(&["city", "zip"]),
        Does::Answer(&["news"]),
    )
    .plan;
    let answer = plan.run("trip", ()).await.unwrap();
    let location = answer.node("location").unwrap();
    assert_eq!(location.status, Status::Failed);
    assert_eq!(location.undeclared_field.as_deref(), Some("zip"));
    assert_eq!(answer.field("city"), None, "the whole output is rejected");
    assert_eq!(answer.status, IntentStatus::Failed);
    assert_eq!(names(&answer.missing_required), ["city"]);
    assert_eq!(
        answer.check().unwrap_err().to_string(),
        "intent \"trip\" is missing required fields \"city\" (node \"location\" failed: returned undeclared field \"zip\")"
    );
}

#[tokio::test]
async fn a_fallback_returning_an_undeclared_field_is_rejected_too() {
    let (w, l, n) = <(Calls, Calls, Calls)>::default();
    let plan = Plan::builder(trip())
        .node("weather", fails(&w, "weather"))
        .fallback("weather", |_, _| async {
            Ok::<_, Down>(Outputs::one("temperature", "20".to_owned()))
        })
        .node("location", answers(&l, &["city", "country"]))
        .node("news", answers(&n, &["news"]))
        .build_in(&Registry::new())
        .unwrap();
    let answer = plan.run("trip", ()).await.unwrap();
    let weather = answer.node("weather").unwrap();
    assert_eq!(weather.status, Status::Failed);
    assert_eq!(weather.undeclared_field.as_deref(), Some("temperature"));
    assert_eq!(weather.error, Some(PolicyError::Inner(Down("weather"))));
    assert_eq!(names(&answer.missing_required), ["weather"]);
}

#[tokio::test(start_paused = true)]
async fn each_node_runs_under_its_declared_timeout_and_retry() {
    let retry = RetrySpec {
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    };
    let contracts = Contracts::new()
        .node(
            NodeSpec::new("slow")
                .outputs(["a"])
                .timeout(Duration::from_secs(1)),
        )
        .node(NodeSpec::new("flaky").outputs(["b"]).retry(retry))
        .intent(IntentSpec::new("i").required(["a", "b"]));
    let flaky = Calls::default();
    let counter = flaky.clone();
    let plan = Plan::<(), &str, Down>::builder(contracts)
        .node("slow", |_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Outputs::one("a", "late"))
        })
        .node("flaky", move |_| {
            let attempt = counter.hit();
            async move {
                if attempt < 3 {
                    Err(Down("flaky"))
                } else {
                    Ok(Outputs::one("b", "third time"))
                }
            }
        })
        .build_in(&Registry::new())
        .unwrap();
    let answer = plan.run("i", ()).await.unwrap();
    let slow = answer.node("slow").unwrap();
    assert_eq!(slow.status, Status::Failed);
    assert!(
        matches!(slow.error, Some(PolicyError::Timeout(e)) if e.after() == Duration::from_secs(1))
    );
    assert_eq!(slow.duration, Duration::from_secs(1));
    assert_eq!(answer.node("flaky").unwrap().status, Status::Success);
    assert_eq!(flaky.get(), 3);
    assert_eq!(answer.field("b"), Some(&"third time"));
    assert_eq!(names(&answer.missing_required), ["a"]);
}

#[tokio::test]
async fn breakers_come_from_the_registry_by_name_and_count_across_plans() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(2))
        .minimum_calls(2)
        .wait_in_open(Duration::from_secs(60));
    let registry = Registry::builder().defaults(config).build().unwrap();
    let contracts = Contracts::new()
        .node(
            NodeSpec::new("rag")
                .outputs(["rules"])
                .breaker("rag-api")
                .on_failure(OnFailure::Skip),
        )
        .intent(IntentSpec::new("waste").optional(["rules"]));
    let calls = Calls::default();
    let build = || {
        Plan::<(), String, Down>::builder(contracts.clone())
            .node("rag", fails(&calls, "rag"))
            .build_in(&registry)
            .unwrap()
    };
    let (one, two) = (build(), build());
    one.run("waste", ()).await.unwrap();
    two.run("waste", ()).await.unwrap();
    assert_eq!(
        registry.get("rag-api").state(),
        State::Open,
        "two plans, one breaker"
    );
    let answer = one.run("waste", ()).await.unwrap();
    let rag = answer.node("rag").unwrap();
    assert!(
        matches!(rag.error, Some(PolicyError::Rejected(_))),
        "{:?}",
        rag.error
    );
    assert_eq!(rag.status, Status::Skipped);
    assert_eq!(
        calls.get(),
        2,
        "the open breaker kept the third call away from the node"
    );
    assert_eq!(answer.status, IntentStatus::Degraded);
}

#[tokio::test]
async fn nodes_get_the_input_and_who_calls_them() {
    let contracts = Contracts::new()
        .node(
            NodeSpec::new("llm")
                .outputs(["summary"])
                .paid()
                .idempotency_key("summaries"),
        )
        .intent(IntentSpec::new("summarise").required(["summary"]));
    let plan = Plan::<String, String, Down>::builder(contracts)
        .node("llm", |call| async move {
            let seen = format!(
                "{} for {} under {:?}: {}",
                call.node(),
                call.intent(),
                call.idempotency_key(),
                call.input()
            );
            Ok(Outputs::one("summary", seen))
        })
        .build_in(&Registry::new())
        .unwrap();
    let answer = plan
        .run("summarise", "dear diary".to_owned())
        .await
        .unwrap();
    assert_eq!(
        answer.field("summary").map(String::as_str),
        Some("llm for summarise under Some(\"summaries\"): dear diary")
    );
    let unknown = plan.run("nope", String::new()).await.unwrap_err();
    assert_eq!(unknown.to_string(), "no intent named \"nope\" in the plan");
}
