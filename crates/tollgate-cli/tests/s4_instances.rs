//! S4 across a crash: a `tollgate serve` process answers 200 with the interview questions and
//! is SIGKILLed before any worker applied the save. The save was in the durable outbox before
//! the answer went out, so the next process on the same database applies it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use support::Instance;
use tollgate_demo::client::HttpClient;

fn serve_args(workers: &str) -> Vec<String> {
    [
        "--fake-llm",
        "--fake-llm-latency",
        "1ms",
        "--outbox-workers",
        workers,
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_instance_killed_right_after_answering_saves_the_questions_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let client = HttpClient::new();
    // No worker: the answer goes out, the save waits in the outbox, then the crash.
    let mut first = Instance::start(&db, &serve_args("0"));
    let url = format!("{}/users/ann/interview-questions", first.url);
    let body = r#"{"role":"backend engineer"}"#;
    let answer = client
        .send_with(Method::POST, &url, &[("x-user-id", "ann")], body)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["save"], "queued");
    first.kill();

    let second = Instance::start(&db, &serve_args("1"));
    let url = format!("{}/users/ann/interview-questions", second.url);
    let deadline = Instant::now() + Duration::from_secs(10);
    let saved = loop {
        let list = client
            .send(Method::GET, &url, Vec::new())
            .await
            .unwrap()
            .json();
        if !list.as_array().unwrap().is_empty() || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        saved.as_array().unwrap().len(),
        1,
        "saved once after the restart"
    );
    assert_eq!(saved[0]["questions"], answer.json()["questions"]);
}
