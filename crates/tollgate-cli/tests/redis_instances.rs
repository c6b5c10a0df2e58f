//! The reference service's exactly-once records on **Redis** (`--once-store redis://…`,
//! issue 12), shared by 3 real `tollgate serve` processes over one SQLite file, one throw-away
//! `redis-server` on a free loopback port and one fake LLM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tollgate_demo::client::HttpClient;
use tollgate_demo::{FakeLlm, FakeLlmConfig};
use tollgate_testkit::server::{AppendFsync, RedisOptions, RedisServer};

mod support;

use support::{
    Instance, count, metric, metrics, next_statuses, post, release_together, store_letters,
};

const DATE: &str = "2026-11-21";

fn serve_args(db: &std::path::Path, redis: &str, llm: &str, lease: &str) -> Vec<String> {
    let db = db.display().to_string();
    [
        "--db",
        &db,
        "--once-store",
        redis,
        "--llm-url",
        llm,
        "--llm-attempts",
        "1",
        "--lease",
        lease,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Redis, the fake LLM and 3 instances holding claims for `lease`, with 2 letters of `user`.
async fn setup(
    user: &str,
    lease: &str,
) -> (RedisServer, FakeLlm, Vec<Instance>, tempfile::TempDir) {
    // Durable as the service requires by default: every write fsynced before it is answered.
    let redis = RedisOptions::new()
        .append_only(AppendFsync::Always)
        .start()
        .unwrap();
    let llm = FakeLlm::start(FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = serve_args(
        &dir.path().join("shared.db"),
        &redis.url(),
        &llm.url(),
        lease,
    );
    let nodes: Vec<Instance> = (0..3).map(|_| Instance::serve(&args)).collect();
    store_letters(&HttpClient::new(), &nodes[0].url, user, 2).await;
    (redis, llm, nodes, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_three_instances_over_one_redis_300_identical_reports_give_one_201_and_one_llm_call() {
    let (_redis, llm, nodes, _dir) = setup("pat", "60s").await;
    let client = HttpClient::new();
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}/users/pat/daily-reports/{DATE}", n.url))
        .collect();
    llm.hold();
    let mut statuses = release_together(&client, &urls, 300, serde_json::Value::Null);
    let others = next_statuses(&mut statuses, 299).await;
    assert_eq!(count(&others, StatusCode::CONFLICT), 299);
    // The 299 may all be answered before the winner's call reaches the LLM: wait for it, then
    // check it is the only one.
    llm.arrived(1).await;
    assert_eq!(llm.stats().calls, 1);
    llm.release();
    assert_eq!(next_statuses(&mut statuses, 1).await, [StatusCode::CREATED]);
    for url in &urls {
        let again = post(&client, url, serde_json::Value::Null).await;
        assert_eq!(again.json()["error"], "report_exists");
        let stored = client.send(Method::GET, url, Vec::new()).await.unwrap();
        assert_eq!(stored.status, StatusCode::OK);
    }
    assert_eq!(llm.stats().calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_redis_instance_killed_mid_call_is_reconciled_from_the_report_table() {
    let (_redis, llm, mut nodes, _dir) = setup("erin", "2s").await;
    let client = HttpClient::new();
    let report = |node: &Instance| format!("{}/users/erin/daily-reports/{DATE}", node.url);
    llm.hold();
    let doomed = tokio::spawn({
        let (client, url) = (client.clone(), report(&nodes[0]));
        async move { client.send(Method::POST, &url, Vec::new()).await }
    });
    llm.arrived(1).await;
    nodes[0].kill(); // SIGKILL, mid-call
    assert!(doomed.await.unwrap().is_err());
    llm.release();
    let answer = post(&client, &report(&nodes[1]), serde_json::Value::Null).await;
    assert_eq!(answer.json()["error"], "report_in_progress");

    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let answer = post(&client, &report(&nodes[2]), serde_json::Value::Null).await;
        if answer.json()["error"] != "report_in_progress" || Instant::now() > deadline {
            break answer;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(settled.status, StatusCode::CREATED, "{:?}", settled.json());
    assert_eq!(llm.stats().calls, 2);
    let again = post(&client, &report(&nodes[1]), serde_json::Value::Null).await;
    assert_eq!(again.json()["error"], "report_exists");
    let paid: u64 = [
        metrics(&client, &nodes[1].url).await,
        metrics(&client, &nodes[2].url).await,
    ]
    .iter()
    .map(|m| metric(m, "tollgate_demo_llm_possibly_double_paid_total"))
    .sum();
    assert_eq!(paid, 1);
}
