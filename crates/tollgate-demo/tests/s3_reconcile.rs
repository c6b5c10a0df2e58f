//! S3 when an instance dies mid-report: the attempt it left is of unknown outcome, and the
//! service settles it from its own report table before anything is paid again. The vanished
//! instance is a claim made straight on the shared store that is never renewed or completed
//! (what a SIGKILLed `tollgate serve` leaves behind).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use http::StatusCode;
use support::Harness;
use tollgate::once::{ClaimOutcome, ClaimRequest, Fingerprint, Key, OnExpired, Owner, Store};
use tollgate_demo::client::Answer;
use tollgate_demo::reports::NAMESPACE;

const DATE: &str = "2026-11-21";

/// Claims the report of `user`'s day as an instance that then vanishes, with a lease of 1 ms.
async fn vanished_instance(h: &Harness, user: &str) {
    let req = ClaimRequest {
        key: Key::new(NAMESPACE, format!("{user}/{DATE}")),
        fingerprint: Fingerprint::new("v1"),
        owner: Owner::random(),
        lease: Duration::from_millis(1),
        on_expired: OnExpired::TakeOver,
        waiting_for: None,
    };
    let store = h.service.app().once().store();
    assert!(matches!(
        store.claim(req).await.unwrap(),
        ClaimOutcome::Acquired { .. }
    ));
}

/// Posts the report until its answer is not "in progress" (the vanished lease runs out on
/// the store's clock within milliseconds); bounded at 10 s.
async fn post_past_the_lease(h: &Harness, user: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = h
            .post(
                &format!("/users/{user}/daily-reports/{DATE}"),
                serde_json::Value::Null,
            )
            .await;
        let in_progress =
            answer.status == StatusCode::CONFLICT && answer.json()["error"] == "report_in_progress";
        if !in_progress || Instant::now() > deadline {
            return answer;
        }
        tokio::task::yield_now().await;
    }
}

fn double_paid(h_metrics: &str) -> u64 {
    h_metrics
        .lines()
        .find(|l| l.starts_with("tollgate_demo_llm_possibly_double_paid_total"))
        .and_then(|l| l.split_whitespace().last())
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_vanished_attempt_without_a_report_is_made_again_once_and_counted() {
    let h = Harness::start().await;
    h.seed_letters("carol", DATE, 2).await;
    let before = double_paid(&String::from_utf8_lossy(&h.get("/metrics").await.body));
    vanished_instance(&h, "carol").await;
    let made = post_past_the_lease(&h, "carol").await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.json());
    assert_eq!(h.llm.stats().calls, 1, "made again: one LLM call");
    let again = h
        .post(
            &format!("/users/carol/daily-reports/{DATE}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(
        (again.status, again.json()["error"].as_str()),
        (StatusCode::CONFLICT, Some("report_exists"))
    );
    assert_eq!(h.llm.stats().calls, 1);
    let after = double_paid(&String::from_utf8_lossy(&h.get("/metrics").await.body));
    assert_eq!(
        after - before,
        1,
        "the possibly double-paid call is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_vanished_attempt_whose_report_is_stored_is_settled_without_paying_again() {
    let h = Harness::start().await;
    h.seed_letters("dave", DATE, 2).await;
    // A report stored by an attempt whose completion never reached the claim (the old
    // three-transaction code could leave this behind).
    let made = h
        .post(
            &format!("/users/dave/daily-reports/{DATE}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let store = h.service.app().once().store().clone();
    let sqlite = h.service.app().db().sqlite().unwrap().store().clone();
    sqlite
        .call(|c| c.execute("DELETE FROM tollgate_once", []))
        .await
        .unwrap();
    vanished_instance(&h, "dave").await;
    let answer = post_past_the_lease(&h, "dave").await;
    assert_eq!(
        (answer.status, answer.json()["error"].as_str()),
        (StatusCode::CONFLICT, Some("report_exists"))
    );
    assert_eq!(h.llm.stats().calls, 1, "not paid again");
    let key = Key::new(NAMESPACE, format!("dave/{DATE}"));
    let record = store.read(&key).await.unwrap().unwrap();
    assert!(
        matches!(record.state, tollgate::once::RecordState::Completed { .. }),
        "settled"
    );
}
