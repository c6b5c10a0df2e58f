//! The reference service on many instances over **one PostgreSQL** (issue 11): real
//! `tollgate serve --database postgres://…` processes, a throw-away `postgres` on a free
//! loopback port and one fake LLM. Requests are released together by a start gate and spread
//! across the instances; every count is exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tollgate_demo::client::HttpClient;
use tollgate_demo::{FakeLlm, FakeLlmConfig};
use tollgate_testkit::server::PostgresServer;

mod support;

use support::{
    Instance, count, metric, metrics, next_statuses, post, release_together, store_letters,
};

const DATE: &str = "2026-11-21";

/// A lease no holder outlives in these tests, however loaded the machine: only the kill test
/// needs one that runs out.
const LONG_LEASE: &str = "60s";
/// The kill test's lease: the survivors answer 409 this long.
const SHORT_LEASE: &str = "2s";

fn serve_args(database: &str, llm: &str, lease: &str) -> Vec<String> {
    [
        "--database",
        database,
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

/// `n` instances on one database, started at the same moment (their migrations race).
fn instances(n: usize, args: &[String]) -> Vec<Instance> {
    std::thread::scope(|scope| {
        let starting: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| Instance::serve(args)))
            .collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    })
}

async fn fake_llm() -> FakeLlm {
    FakeLlm::start(FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_three_instances_on_one_postgres_300_identical_reports_give_one_201_and_one_llm_call() {
    let server = PostgresServer::start().unwrap();
    let llm = fake_llm().await;
    let nodes = instances(3, &serve_args(&server.url(), &llm.url(), LONG_LEASE));
    let client = HttpClient::new();
    store_letters(&client, &nodes[0].url, "pat", 3).await;
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}/users/pat/daily-reports/{DATE}", n.url))
        .collect();

    // The one LLM call is held until every other request has been answered: they are all
    // answered while the report is being made.
    llm.hold();
    let mut statuses = release_together(&client, &urls, 300, serde_json::Value::Null);
    let others = next_statuses(&mut statuses, 299).await;
    assert_eq!(count(&others, StatusCode::CONFLICT), 299);
    // The 299 may all be answered before the winner's call reaches the LLM: wait for it, then
    // check it is the only one.
    llm.arrived(1).await;
    assert_eq!(llm.stats().calls, 1);
    llm.release();
    let last = next_statuses(&mut statuses, 1).await;
    assert_eq!(last, [StatusCode::CREATED]);
    assert_eq!(llm.stats().calls, 1);

    assert_eq!(
        server
            .psql("postgres", "SELECT count(*) FROM tollgate_demo.reports")
            .unwrap(),
        "1"
    );
    assert_eq!(
        server
            .psql("postgres", "SELECT count(*) FROM tollgate_demo.analyses")
            .unwrap(),
        "3"
    );
    // Every instance serves the same report, and a repeat anywhere is `report_exists`.
    let mut bodies = Vec::new();
    for url in &urls {
        let stored = client.send(Method::GET, url, Vec::new()).await.unwrap();
        assert_eq!(stored.status, StatusCode::OK);
        bodies.push(stored.json());
        let again = post(&client, url, serde_json::Value::Null).await;
        assert_eq!(again.json()["error"], "report_exists");
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert_eq!(llm.stats().calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_three_instances_on_one_postgres_300_purchases_of_10_from_1000_leave_exactly_0() {
    let server = PostgresServer::start().unwrap();
    let llm = fake_llm().await;
    let nodes = instances(3, &serve_args(&server.url(), &llm.url(), LONG_LEASE));
    let client = HttpClient::new();
    let wallet = format!("{}/wallets/w1", nodes[1].url);
    let put = client
        .send(
            Method::PUT,
            &wallet,
            serde_json::json!({ "balance": 1_000 })
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::CREATED);
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}/wallets/w1/purchases", n.url))
        .collect();
    let body = serde_json::json!({ "item": "credit", "price": 10 });
    let mut statuses = release_together(&client, &urls, 300, body);
    let all = next_statuses(&mut statuses, 300).await;
    assert_eq!(
        (
            count(&all, StatusCode::CREATED),
            count(&all, StatusCode::CONFLICT)
        ),
        (100, 200)
    );
    let balance = client.send(Method::GET, &wallet, Vec::new()).await.unwrap();
    assert_eq!(balance.json()["balance"], 0);
    assert_eq!(
        server
            .psql(
                "postgres",
                "SELECT count(*), sum(price) FROM tollgate_demo.purchases"
            )
            .unwrap(),
        "100|1000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_postgres_instance_killed_mid_call_is_reconciled_by_the_others_and_paid_once_more() {
    let server = PostgresServer::start().unwrap();
    let llm = fake_llm().await;
    let mut nodes = instances(3, &serve_args(&server.url(), &llm.url(), SHORT_LEASE));
    let client = HttpClient::new();
    store_letters(&client, &nodes[0].url, "erin", 2).await;
    let report = |node: &Instance| format!("{}/users/erin/daily-reports/{DATE}", node.url);

    llm.hold();
    let doomed = tokio::spawn({
        let (client, url) = (client.clone(), report(&nodes[0]));
        async move { client.send(Method::POST, &url, Vec::new()).await }
    });
    llm.arrived(1).await;
    nodes[0].kill(); // SIGKILL, mid-call
    assert!(
        doomed.await.unwrap().is_err(),
        "the killed instance never answered"
    );
    llm.release();

    // While the dead instance's lease runs, both survivors answer 409.
    for node in &nodes[1..] {
        let answer = post(&client, &report(node), serde_json::Value::Null).await;
        assert_eq!(answer.status, StatusCode::CONFLICT);
        assert_eq!(answer.json()["error"], "report_in_progress");
    }
    // Then one of them settles the day through the reconcile hook: no report was stored, so
    // it is made once more (2 LLM calls in all, never a third).
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        let answer = post(&client, &report(&nodes[2]), serde_json::Value::Null).await;
        if answer.json()["error"] != "report_in_progress" || Instant::now() > deadline {
            break answer;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(settled.status, StatusCode::CREATED, "{:?}", settled.json());
    for node in &nodes[1..] {
        let again = post(&client, &report(node), serde_json::Value::Null).await;
        assert_eq!(again.json()["error"], "report_exists");
    }
    assert_eq!(llm.stats().calls, 2);
    assert_eq!(
        server
            .psql("postgres", "SELECT count(*) FROM tollgate_demo.reports")
            .unwrap(),
        "1"
    );
    let survivors = [
        metrics(&client, &nodes[1].url).await,
        metrics(&client, &nodes[2].url).await,
    ];
    let double_paid: u64 = survivors
        .iter()
        .map(|m| metric(m, "tollgate_demo_llm_possibly_double_paid_total"))
        .sum();
    assert_eq!(double_paid, 1);
}

#[test]
fn s3_demo_races_on_postgres_and_the_guarded_side_holds() {
    let server = PostgresServer::start().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "demo",
            "--requests",
            "50",
            "--llm-latency",
            "50ms",
            "--json",
        ])
        .args(["--database", &server.url()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["guarded"]["status"]["201"], 1);
    assert_eq!(report["guarded"]["status"]["409"], 49);
    assert_eq!(report["guarded"]["llm_calls"], 1);
    assert_eq!(report["guarded"]["reports_stored"], 1);
    // The naive side paid more than once on PostgreSQL too.
    let naive = &report["naive"];
    assert!(naive["llm_calls"].as_u64().unwrap() > 1, "{naive}");
    // Each 201 stored its own report, and each of them paid.
    let created = naive["status"]["201"].as_u64().unwrap_or(0);
    assert_eq!(naive["reports_stored"].as_u64(), Some(created), "{naive}");
    assert!(naive["llm_calls"].as_u64().unwrap() >= created, "{naive}");
}
