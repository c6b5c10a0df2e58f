//! The reference service's routes on PostgreSQL (in process, one instance, a throw-away
//! server): the Idempotency-Key layer on the PostgreSQL store (S2), the report written with
//! its completion in one PostgreSQL transaction (S3), and S4's outbox save and its naive
//! counterpart. The many-instance tests are in `tollgate-cli/tests/postgres_instances.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use support::Harness;
use tokio::sync::Barrier;
use tollgate_demo::db::Repository;

fn psql(h: &Harness, sql: &str) -> String {
    h.postgres.as_ref().unwrap().psql("postgres", sql).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_postgres_purchase_retried_under_one_idempotency_key_is_charged_once() {
    let h = Arc::new(Harness::start_on_postgres(false).await);
    let put = h
        .client
        .send(
            Method::PUT,
            &h.url("/wallets/w1"),
            serde_json::json!({ "balance": 1_000 })
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::CREATED);
    let body = serde_json::json!({ "item": "cola", "price": 10 });
    let gate = Arc::new(Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (h, gate, body) = (Arc::clone(&h), Arc::clone(&gate), body.clone());
            tokio::spawn(async move {
                gate.wait().await;
                let url = h.url("/wallets/w1/purchases");
                let key = [("idempotency-key", "buy-1")];
                h.client.post_with(&url, &key, &body).await.unwrap()
            })
        })
        .collect();
    let (mut fresh, mut other) = (0, 0);
    for task in tasks {
        let answer = task.await.unwrap();
        let replay = answer.headers.get("idempotent-replayed").is_some();
        match (answer.status, replay) {
            (StatusCode::CREATED, false) => fresh += 1,
            (StatusCode::CREATED, true) | (StatusCode::CONFLICT, false) => other += 1,
            unexpected => panic!("unexpected {unexpected:?}: {:?}", answer.json()),
        }
    }
    assert_eq!((fresh, other), (1, 199));
    assert_eq!(h.service.app().db().purchases("w1").await.unwrap(), 1);
    assert_eq!(h.get("/wallets/w1").await.json()["balance"], 990);
    // The key's record is in the PostgreSQL store, completed.
    assert_eq!(
        psql(&h, "SELECT count(*) FROM tollgate.once WHERE state = 1"),
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_postgres_report_and_the_completion_of_its_claim_commit_together() {
    let h = Harness::start_on_postgres(false).await;
    h.seed_letters("ann", "2026-11-21", 2).await;
    let made = h
        .post(
            "/users/ann/daily-reports/2026-11-21",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.json());
    assert_eq!(made.json()["analyses"].as_array().unwrap().len(), 2);
    let again = h
        .post(
            "/users/ann/daily-reports/2026-11-21",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(again.json()["error"], "report_exists");
    assert_eq!(h.llm.stats().calls, 1);
    assert_eq!(psql(&h, "SELECT count(*) FROM tollgate_demo.reports"), "1");
    assert_eq!(
        psql(&h, "SELECT state FROM tollgate.once"),
        "1",
        "completed"
    );
    let stored = h.get("/users/ann/daily-reports/2026-11-21").await;
    assert_eq!(stored.json(), made.json());
}

async fn ask(h: &Harness, path: &str, signed_in_as: Option<&str>) -> tollgate_demo::client::Answer {
    let headers: Vec<(&str, &str)> = signed_in_as.map(|u| ("x-user-id", u)).into_iter().collect();
    let body = serde_json::json!({ "role": "backend engineer" }).to_string();
    h.client
        .send_with(Method::POST, &h.url(path), &headers, body)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s4_postgres_failed_saves_are_retried_by_the_outbox_and_the_answer_never_breaks() {
    let h = Harness::start_on_postgres(false).await;
    h.service.app().save_faults().fail_next(2);
    let answer = ask(&h, "/users/kim/interview-questions", Some("kim")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["save"], "queued");
    assert_eq!(answer.json()["questions"].as_array().unwrap().len(), 5);
    // Applied by the worker after two failed attempts (bounded wait for the worker's retries).
    let deadline = Instant::now() + Duration::from_secs(10);
    let saved = loop {
        let list = h.get("/users/kim/interview-questions").await.json();
        if !list.as_array().unwrap().is_empty() || Instant::now() > deadline {
            break list;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(saved.as_array().unwrap().len(), 1);
    assert_eq!(saved[0]["questions"], answer.json()["questions"]);
    assert_eq!(
        psql(&h, "SELECT state, attempts FROM tollgate.outbox"),
        "2|3",
        "done after 3 attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s4_postgres_naive_save_that_fails_loses_the_paid_questions() {
    let h = Harness::start_on_postgres(true).await;
    h.service.app().save_faults().fail_next(1);
    let answer = ask(&h, "/naive/users/lee/interview-questions", Some("lee")).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json()["error"], "save_failed");
    assert_eq!(h.llm.stats().calls, 1, "the questions were paid for");
    assert_eq!(
        psql(&h, "SELECT count(*) FROM tollgate_demo.interview_questions"),
        "0"
    );
    let saved = ask(&h, "/naive/users/lee/interview-questions", Some("lee")).await;
    assert_eq!(saved.json()["save"], "saved");
    assert_eq!(
        psql(&h, "SELECT count(*) FROM tollgate_demo.interview_questions"),
        "1"
    );
}
