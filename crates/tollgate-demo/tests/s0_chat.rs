//! S0 over HTTP on a real socket: `POST /chat` fans out to fake nodes under the checked plan.
//! A fallback really runs and is reported `fallback_success`; a required node failing is a 502
//! naming the missing fields, an optional one a degraded answer; a service with a drifted plan
//! refuses to start, naming the problem.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};
use support::Harness;
use tokio::sync::Barrier;
use tollgate_demo::chat::{Chat, DEFAULT_PLAN, FakeNode};
use tollgate_demo::{Service, ServiceConfig};

async fn chat(h: &Harness, intent: &str, message: &str) -> (StatusCode, Value) {
    let answer = h
        .post("/chat", json!({ "intent": intent, "message": message }))
        .await;
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    (answer.status, answer.json())
}

fn statuses(reply: &Value) -> Vec<(String, String)> {
    reply["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap().to_owned();
            (s("node"), s("status"))
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn node<'a>(h: &'a Harness, name: &str) -> &'a FakeNode {
    h.service.app().chat().nodes().get(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_chat_a_complete_answer_merges_the_fields_of_the_intents_nodes_only() {
    let h = Harness::start().await;
    let (status, reply) = chat(&h, "weather", "will it rain?").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["status"], "complete");
    assert_eq!(
        reply["fields"],
        json!({
            "character": "Eco the raccoon hears: will it rain?",
            "city": "Seoul",
            "country": "KR",
            "weather": "sunny, 21°C"
        })
    );
    assert_eq!(
        statuses(&reply),
        pairs(&[
            ("character", "success"),
            ("location", "success"),
            ("weather", "success")
        ])
    );
    let required: Vec<bool> = reply["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["required"].as_bool().unwrap())
        .collect();
    assert_eq!(required, [false, true, true], "derived from the fields");
    assert_eq!(
        node(&h, "rag").calls(),
        0,
        "the weather intent does not use rag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_chat_the_weather_fallback_runs_and_is_reported_fallback_success() {
    let h = Harness::start().await;
    node(&h, "weather").set_failing(true);
    let (status, reply) = chat(&h, "weather", "umbrella?").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["fields"]["weather"], "cloudy (cached forecast)");
    let weather = &reply["nodes"][2]; // nodes come in name order
    assert_eq!(
        (weather["node"].as_str(), weather["status"].as_str()),
        (Some("weather"), Some("fallback_success"))
    );
    assert_eq!(weather["error"], "weather failed (injected)");
    assert_eq!(
        node(&h, "weather").calls(),
        2,
        "two attempts, as the plan says"
    );
    assert_eq!(h.service.app().chat().nodes().weather_fallbacks(), 1);
}

/// Starts a service, breaks `location` with `fault`, and expects a 502 naming the missing
/// `city` and the node's `cause`.
async fn city_is_missing_because(fault: impl FnOnce(&FakeNode), cause: &str) {
    let h = Harness::start().await;
    fault(node(&h, "location"));
    let (status, reply) = chat(&h, "weather", "umbrella?").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let message = format!(
        "intent \"weather\" is missing required fields \"city\" (node \"location\" failed: {cause})"
    );
    assert_eq!(
        reply,
        json!({ "error": "missing_required_fields", "message": message })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_chat_a_required_node_failing_is_a_502_naming_the_missing_fields() {
    city_is_missing_because(|n| n.set_failing(true), "location failed (injected)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_chat_a_slow_required_node_times_out_under_its_policy() {
    // Its timeout is 1 s.
    let slow = |n: &FakeNode| n.set_latency(Duration::from_millis(1_500));
    city_is_missing_because(slow, "call timed out after 1s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_chat_a_node_returning_an_undeclared_field_is_an_error_not_a_silent_drop() {
    let breach = |n: &FakeNode| n.set_undeclared_field(true);
    city_is_missing_because(breach, "returned undeclared field \"debug_trace\"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_chat_an_optional_node_failing_gives_a_degraded_answer() {
    let h = Harness::start().await;
    node(&h, "character").set_failing(true);
    let (status, reply) = chat(&h, "weather", "umbrella?").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["status"], "degraded");
    assert_eq!(reply["missing_optional"], json!(["character"]));
    assert_eq!(
        statuses(&reply),
        pairs(&[
            ("character", "skipped"),
            ("location", "success"),
            ("weather", "success")
        ])
    );
    assert_eq!(reply["fields"]["city"], "Seoul");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s0_chat_100_concurrent_chats_each_get_a_complete_answer() {
    const CHATS: usize = 100;
    let h = Arc::new(Harness::start().await);
    let gate = Arc::new(Barrier::new(CHATS));
    let tasks: Vec<_> = (0..CHATS)
        .map(|i| {
            let (h, gate) = (h.clone(), gate.clone());
            tokio::spawn(async move {
                gate.wait().await;
                chat(&h, "waste", &format!("bottle {i}")).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (status, reply) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["status"], "complete");
        assert_eq!(
            reply["fields"]["character"],
            format!("Eco the raccoon hears: bottle {i}")
        );
    }
    let calls: Vec<usize> = ["weather", "location", "character", "rag"]
        .iter()
        .map(|n| node(&h, n).calls())
        .collect();
    assert_eq!(calls, [0, CHATS, CHATS, CHATS]);
}

#[tokio::test]
async fn s0_chat_the_service_refuses_to_start_with_a_drifted_plan_naming_the_problem() {
    assert!(Chat::new(DEFAULT_PLAN).is_ok(), "the shipped plan is valid");
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        dir.path().join("service.db"),
        "http://127.0.0.1:9",
    );
    config.chat_plan = DEFAULT_PLAN.replace(
        "required = [\"weather\", \"city\"]",
        "required = [\"weather_context\", \"city\"]",
    );
    let error = Service::start(config).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "chat plan: invalid plan (2 problems): node \"weather\" is used by no intent (no intent \
         lists any of its outputs); intent \"weather\" requires field \"weather_context\" but no \
         node produces it"
    );
    assert!(
        !dir.path().join("service.db").exists(),
        "refused before touching anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_bad_input_is_a_4xx_json_error() {
    let h = Harness::start().await;
    let (status, reply) = chat(&h, "horoscope", "hello").await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_intent"))
    );
    assert_eq!(
        reply["message"],
        "no intent named \"horoscope\"; known: smalltalk, waste, weather"
    );
    let (status, reply) = chat(&h, "weather", "   ").await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_message"))
    );
    let cases = [
        (json!({ "intent": "weather" }), 422, "invalid_body"),
        (
            json!({ "intent": "weather", "message": "hi", "user": "ann" }),
            422,
            "invalid_body",
        ),
        (json!({ "intent": 5, "message": "hi" }), 422, "invalid_body"),
        (
            json!({ "intent": "weather", "message": "x".repeat(5000) }),
            422,
            "invalid_message",
        ),
    ];
    for (body, code, error) in cases {
        let answer = h.post("/chat", body.clone()).await;
        assert_eq!(answer.status.as_u16(), code, "{body}");
        assert_eq!(answer.json()["error"], error, "{body}");
    }
    let raw = h
        .client
        .send(http::Method::POST, &h.url("/chat"), "{not json")
        .await
        .unwrap();
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
}
