//! S4 over HTTP: the interview questions (the paid result) are always answered at once; saving
//! them for a signed-in user is an outbox effect that is retried, dead-lettered after its last
//! attempt and re-queued after a fix — never lost — while the naive path, which saves inside
//! the request's transaction, loses the paid result when the save fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use support::Harness;
use tollgate_demo::FakeLlmConfig;
use tollgate_demo::client::Answer;
use tollgate_demo::llm::LlmSettings;

async fn ask(h: &Harness, path: &str, signed_in_as: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = signed_in_as.map(|u| ("x-user-id", u)).into_iter().collect();
    let body = serde_json::json!({ "role": "backend engineer" }).to_string();
    h.client
        .send_with(Method::POST, &h.url(path), &headers, body)
        .await
        .unwrap()
}

/// Polls `GET path` until its JSON array has `n` entries (bounded at 10 s).
async fn until_len(h: &Harness, path: &str, n: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = h.get(path).await.json();
        if list.as_array().unwrap().len() >= n || Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn attempts(h: &Harness) -> Vec<i64> {
    let outbox = h.service.app().db().sqlite().unwrap().store().clone();
    outbox
        .call(|c| {
            let mut q = c.prepare(
                "SELECT id, attempts FROM tollgate_outbox_open UNION ALL \
                 SELECT id, attempts FROM tollgate_outbox_closed ORDER BY id",
            )?;
            let rows = q.query_map([], |r| r.get(1))?;
            rows.collect()
        })
        .await
        .unwrap()
}

async fn harness(naive: bool) -> Harness {
    let fast = FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    };
    Harness::start_with(fast, LlmSettings::default(), naive).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_http_save_failing_three_times_answers_200_at_once_and_saves_once() {
    let h = harness(false).await;
    h.service.app().save_faults().fail_next(3);
    let answer = ask(&h, "/users/ann/interview-questions", Some("ann")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["questions"].as_array().unwrap().len(), 5);
    assert_eq!(answer.json()["save"], "queued");
    let saved = until_len(&h, "/users/ann/interview-questions", 1).await;
    assert_eq!(saved.as_array().unwrap().len(), 1, "saved exactly once");
    assert_eq!(saved[0]["role"], "backend engineer");
    assert_eq!(
        attempts(&h).await,
        vec![4],
        "3 failed attempts, then the save"
    );
    assert_eq!(h.llm.stats().calls, 1, "paid once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_http_save_always_failing_is_dead_lettered_then_requeued_and_saved_once() {
    let h = harness(false).await;
    h.service.app().save_faults().fail_next(u64::MAX);
    let answer = ask(&h, "/users/bob/interview-questions", Some("bob")).await;
    assert_eq!(
        (answer.status, answer.json()["save"].as_str()),
        (StatusCode::OK, Some("queued"))
    );
    let dead = until_len(&h, "/admin/dead-letters", 1).await;
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["attempts"], 5);
    assert_eq!(dead[0]["kind"], "save-interview-questions");
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("refused the save")
    );
    assert_eq!(
        h.get("/users/bob/interview-questions").await.json(),
        serde_json::json!([])
    );

    h.service.app().save_faults().fail_next(0); // the fault is fixed
    let id = dead[0]["id"].as_u64().unwrap();
    let requeue = format!("{}/admin/dead-letters/{id}/requeue", h.service.url());
    let requeued = h
        .client
        .send(Method::POST, &requeue, Vec::new())
        .await
        .unwrap();
    assert_eq!(requeued.status, StatusCode::NO_CONTENT);
    let saved = until_len(&h, "/users/bob/interview-questions", 1).await;
    assert_eq!(saved.as_array().unwrap().len(), 1);
    assert_eq!(
        h.get("/admin/dead-letters").await.json(),
        serde_json::json!([])
    );
    let again = h
        .client
        .send(Method::POST, &requeue, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        again.status,
        StatusCode::NOT_FOUND,
        "only a dead letter is re-queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_http_naive_path_loses_the_paid_questions_when_the_save_fails() {
    let h = harness(true).await;
    h.service.app().save_faults().fail_next(1);
    let naive = ask(&h, "/naive/users/cid/interview-questions", Some("cid")).await;
    assert_eq!(naive.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(naive.json()["error"], "save_failed");
    assert_eq!(h.llm.stats().calls, 1, "the questions were paid for…");
    assert_eq!(
        h.get("/users/cid/interview-questions").await.json(),
        serde_json::json!([]),
        "…and lost"
    );

    h.service.app().save_faults().fail_next(1);
    let guarded = ask(&h, "/users/cid/interview-questions", Some("cid")).await;
    assert_eq!(
        guarded.status,
        StatusCode::OK,
        "the same fault never reaches the user"
    );
    let saved = until_len(&h, "/users/cid/interview-questions", 1).await;
    assert_eq!(saved.as_array().unwrap().len(), 1);
    assert_eq!(h.llm.stats().calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_http_anonymous_requests_are_answered_and_not_saved_and_bad_roles_are_400() {
    let h = harness(false).await;
    let anonymous = ask(&h, "/users/dee/interview-questions", None).await;
    assert_eq!(
        (anonymous.status, anonymous.json()["save"].as_str()),
        (StatusCode::OK, Some("not_signed_in"))
    );
    let someone_else = ask(&h, "/users/dee/interview-questions", Some("eve")).await;
    assert_eq!(someone_else.json()["save"], "not_signed_in");
    assert!(attempts(&h).await.is_empty(), "nothing enqueued");
    let bad = h
        .client
        .send(
            Method::POST,
            &h.url("/users/dee/interview-questions"),
            r#"{"role":"  "}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (bad.status, bad.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_role"))
    );
}
