//! S3 across real `tollgate serve` processes sharing one SQLite database and one fake LLM: the
//! instance holding a day's LLM call is SIGKILLed mid-call. The other instance answers 409
//! while the dead instance's lease runs, then settles the day through the reconcile hook — it
//! finds no stored report, makes it once, and counts the possibly double-paid call — instead
//! of answering `outcome_unknown` forever.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tollgate_demo::client::HttpClient;
use tollgate_demo::{FakeLlm, FakeLlmConfig};

const DATE: &str = "2026-11-21";
const LEASE: &str = "2s";

mod support;

use support::{Instance, metric, post};

fn serve_args(llm: &str) -> Vec<String> {
    ["--lease", LEASE, "--llm-attempts", "1", "--llm-url", llm]
        .map(str::to_owned)
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_instance_killed_mid_call_is_reconciled_by_another_instance_and_paid_once_more() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let llm = FakeLlm::start(FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    })
    .await
    .unwrap();
    let (a, b) = (
        Instance::start(&db, &serve_args(&llm.url())),
        Instance::start(&db, &serve_args(&llm.url())),
    );
    let client = HttpClient::new();
    for i in 0..2 {
        let letter = serde_json::json!({ "date": DATE, "text": format!("letter {i}") });
        let stored = post(&client, &format!("{}/users/erin/letters", a.url), letter).await;
        assert_eq!(stored.status, StatusCode::CREATED);
    }
    let report = |instance: &Instance| format!("{}/users/erin/daily-reports/{DATE}", instance.url);

    llm.hold();
    let doomed = tokio::spawn({
        let (client, url) = (client.clone(), report(&a));
        async move { client.send(Method::POST, &url, Vec::new()).await }
    });
    llm.arrived(1).await;
    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL, mid-call
    a.child.wait().unwrap();
    assert!(
        doomed.await.unwrap().is_err(),
        "the killed instance never answered"
    );

    let while_leased = post(&client, &report(&b), serde_json::Value::Null).await;
    assert_eq!(while_leased.status, StatusCode::CONFLICT);
    assert_eq!(while_leased.json()["error"], "report_in_progress");
    llm.release();

    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let answer = post(&client, &report(&b), serde_json::Value::Null).await;
        let in_progress = answer.json()["error"] == "report_in_progress";
        if !in_progress || Instant::now() > deadline {
            break answer;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(settled.status, StatusCode::CREATED, "{:?}", settled.json());
    assert_eq!(
        llm.stats().calls,
        2,
        "the dead instance's call and one more, no third"
    );
    let again = post(&client, &report(&b), serde_json::Value::Null).await;
    assert_eq!(again.json()["error"], "report_exists");

    let metrics = client
        .send(Method::GET, &format!("{}/metrics", b.url), Vec::new())
        .await;
    let metrics = String::from_utf8_lossy(&metrics.unwrap().body).into_owned();
    assert_eq!(
        metric(&metrics, "tollgate_demo_llm_possibly_double_paid_total"),
        1
    );
    assert_eq!(metric(&metrics, "tollgate_once_reconciled_total"), 1);
    assert_eq!(llm.stats().calls, 2);
}
