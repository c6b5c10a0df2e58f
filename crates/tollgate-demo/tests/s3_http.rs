//! S3 over HTTP on a real socket: the daily report is paid for once, stored once, and every
//! other request gets a 409 — and the naive path, raced the same way, really pays many times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use support::Harness;
use tokio::sync::Barrier;
use tollgate_demo::FakeLlmConfig;
use tollgate_demo::db::{CodePath, Repository};
use tollgate_demo::demo::{self, DemoOptions};
use tollgate_demo::llm::LlmSettings;
use tollgate_demo::validate::Day;

const DATE: &str = "2026-11-21";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_http_100_concurrent_requests_give_one_201_one_llm_call_one_report() {
    let h = Arc::new(Harness::start().await);
    h.seed_letters("alice", DATE, 3).await;
    let gate = Arc::new(Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (h, gate) = (Arc::clone(&h), Arc::clone(&gate));
            tokio::spawn(async move {
                gate.wait().await;
                h.post(
                    &format!("/users/alice/daily-reports/{DATE}"),
                    serde_json::Value::Null,
                )
                .await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            StatusCode::CREATED => created.push(answer.json()),
            StatusCode::CONFLICT => {
                let code = answer.json()["error"].as_str().unwrap().to_owned();
                assert!(
                    code == "report_in_progress" || code == "report_exists",
                    "{code}"
                );
                assert_eq!(answer.content_type.as_deref(), Some("application/json"));
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {:?}", answer.json()),
        }
    }
    assert_eq!((created.len(), conflicts), (1, 99));
    assert_eq!(h.llm.stats().calls, 1);
    let db = h.service.app().db();
    let date = Day::parse(DATE).unwrap();
    assert_eq!(db.reports_stored("alice", date).await.unwrap(), (1, 0));
    assert_eq!(db.lock_errors().get(CodePath::Guarded), 0);

    // The 201's report is the stored one: one analysis per letter.
    let report = &created[0];
    assert_eq!(report["analyses"].as_array().unwrap().len(), 3);
    let stored = h.get(&format!("/users/alice/daily-reports/{DATE}")).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(&stored.json(), report);

    // A repeat later is a 409 too, and pays nothing.
    let again = h
        .post(
            &format!("/users/alice/daily-reports/{DATE}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(
        (again.status, again.json()["error"].as_str()),
        (StatusCode::CONFLICT, Some("report_exists"))
    );
    assert_eq!(h.llm.stats().calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_http_distinct_days_are_independent() {
    let h = Arc::new(Harness::start().await);
    let days = [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
        "2026-11-05",
    ];
    for day in days {
        h.seed_letters("bob", day, 2).await;
    }
    let gate = Arc::new(Barrier::new(days.len() * 20));
    let tasks: Vec<_> = days
        .iter()
        .flat_map(|day| std::iter::repeat_n(*day, 20))
        .map(|day| {
            let (h, gate) = (Arc::clone(&h), Arc::clone(&gate));
            tokio::spawn(async move {
                gate.wait().await;
                let answer = h
                    .post(
                        &format!("/users/bob/daily-reports/{day}"),
                        serde_json::Value::Null,
                    )
                    .await;
                (day, answer.status)
            })
        })
        .collect();
    let mut created = std::collections::BTreeMap::new();
    for task in tasks {
        let (day, status) = task.await.unwrap();
        match status {
            StatusCode::CREATED => *created.entry(day).or_insert(0) += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created.len(), days.len());
    assert!(created.values().all(|&n| n == 1), "{created:?}");
    assert_eq!(h.llm.stats().calls, days.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_http_no_letters_is_404_and_frees_the_day() {
    let h = Harness::start().await;
    let path = format!("/users/carol/daily-reports/{DATE}");
    let empty = h.post(&path, serde_json::Value::Null).await;
    assert_eq!(
        (empty.status, empty.json()["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_letters"))
    );
    assert_eq!(h.llm.stats().calls, 0);
    h.seed_letters("carol", DATE, 1).await;
    assert_eq!(
        h.post(&path, serde_json::Value::Null).await.status,
        StatusCode::CREATED
    );
    assert_eq!(h.get(&path).await.status, StatusCode::OK);
    assert_eq!(
        h.get("/users/carol/daily-reports/2026-11-22").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_http_open_llm_breaker_answers_503_with_retry_after_and_stops_calling() {
    let mut settings = LlmSettings {
        attempts: 1,
        ..LlmSettings::default()
    };
    settings.breaker = settings
        .breaker
        .window(tollgate::breaker::SlidingWindow::Count(2))
        .minimum_calls(2)
        .wait_in_open(Duration::from_secs(30));
    let failing = FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 1.0,
    };
    let h = Harness::start_with(failing, settings, false).await;
    h.seed_letters("dave", DATE, 2).await;
    let path = format!("/users/dave/daily-reports/{DATE}");
    for _ in 0..2 {
        let answer = h.post(&path, serde_json::Value::Null).await;
        assert_eq!(
            (answer.status, answer.json()["error"].as_str()),
            (StatusCode::BAD_GATEWAY, Some("llm_failed"))
        );
    }
    assert_eq!(h.llm.stats().calls, 2);
    let open = h.post(&path, serde_json::Value::Null).await;
    assert_eq!(open.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(open.json()["error"].as_str(), Some("llm_circuit_open"));
    let retry_after: u64 = open.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(
        h.llm.stats().calls,
        2,
        "an open breaker does not call the LLM"
    );

    // The failures freed the day: once the LLM is back, the report is made.
    h.llm.configure(FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    });
    h.service.app().llm().breaker().reset();
    assert_eq!(
        h.post(&path, serde_json::Value::Null).await.status,
        StatusCode::CREATED
    );
    assert_eq!(h.llm.stats().calls, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_demo_guarded_side_holds_and_naive_side_pays_more_than_once() {
    let options = DemoOptions {
        requests: 100,
        llm_latency: Duration::from_millis(200),
        pool_size: 20,
        database: None,
    };
    let report = demo::run(&options, |_| {}).await.unwrap();
    assert_eq!(report.requests, 100);
    let g = &report.guarded;
    assert_eq!(g.status.get("201"), Some(&1));
    assert_eq!(g.status.get("409"), Some(&99));
    assert_eq!(g.status.len(), 2, "{:?}", g.status);
    assert_eq!((g.llm_calls, g.reports_stored, g.lock_errors), (1, 1, 0));
    assert!(report.guarded_held());

    // The naive path is the original code, not a rigged one: the bug shows on its own.
    let n = &report.naive;
    // How many paid depends on the scheduling; that more than one did is the bug. Each 201
    // stored its own report, and each of them paid.
    assert!(n.llm_calls > 1, "{n:?}");
    assert_eq!(n.status.values().sum::<usize>(), 100);
    let created = n.status.get("201").copied().unwrap_or(0);
    assert!(created >= 1, "{n:?}");
    assert_eq!(
        n.reports_stored as usize, created,
        "one report a 201: {n:?}"
    );
    assert!(n.llm_calls as usize >= created, "{n:?}");
    assert_eq!(
        n.status.get("500").copied().unwrap_or(0) as u64,
        n.lock_errors,
        "{n:?}"
    );

    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    for side in ["naive", "guarded"] {
        for field in ["status", "llm_calls", "reports_stored", "lock_errors"] {
            assert!(json[side].get(field).is_some(), "{side}.{field}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_http_llm_failures_are_retried_within_one_request() {
    let settings = LlmSettings {
        attempts: 3,
        backoff: Duration::from_millis(1),
        ..LlmSettings::default()
    };
    let fast = FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    };
    let h = Harness::start_with(fast, settings, false).await;
    h.seed_letters("fay", DATE, 2).await;
    h.llm.fail_next(2);
    let answer = h
        .post(
            &format!("/users/fay/daily-reports/{DATE}"),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.json());
    let stats = h.llm.stats();
    assert_eq!((stats.calls, stats.failures), (3, 2));

    // Three failures in a row exhaust the attempts: 502, and the day stays free.
    h.seed_letters("gus", DATE, 1).await;
    h.llm.fail_next(3);
    let path = format!("/users/gus/daily-reports/{DATE}");
    let failed = h.post(&path, serde_json::Value::Null).await;
    assert_eq!(
        (failed.status, failed.json()["error"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("llm_failed"))
    );
    assert_eq!(h.llm.stats().calls, 6);
    assert_eq!(
        h.post(&path, serde_json::Value::Null).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_http_llm_timeout_is_504_and_frees_the_day() {
    let settings = LlmSettings {
        attempts: 1,
        timeout: Duration::from_millis(100),
        ..LlmSettings::default()
    };
    let slow = FakeLlmConfig {
        latency: Duration::from_secs(30),
        failure_rate: 0.0,
    };
    let h = Harness::start_with(slow, settings, false).await;
    h.seed_letters("hal", DATE, 1).await;
    let path = format!("/users/hal/daily-reports/{DATE}");
    let answer = h.post(&path, serde_json::Value::Null).await;
    assert_eq!(
        (answer.status, answer.json()["error"].as_str()),
        (StatusCode::GATEWAY_TIMEOUT, Some("llm_timeout"))
    );
    h.llm.configure(FakeLlmConfig {
        latency: Duration::ZERO,
        failure_rate: 0.0,
    });
    assert_eq!(
        h.post(&path, serde_json::Value::Null).await.status,
        StatusCode::CREATED
    );
    assert_eq!(h.llm.stats().calls, 2);
}

/// While the LLM call of `path` is held, commits a write from another connection and checks
/// whether any connection still reads from an older snapshot (a transaction left open): a
/// `TRUNCATE` checkpoint must then report busy. Returns (write committed, checkpoint busy, the
/// request's status).
async fn probe_during_llm_call(h: &Arc<Harness>, path: &str) -> (bool, i64, StatusCode) {
    h.llm.hold();
    // Calls arrive in order and are counted on arrival: this request's is the next one.
    let this_call = h.llm.stats().calls + 1;
    let request = {
        let (h, path) = (Arc::clone(h), path.to_owned());
        tokio::spawn(async move { h.post(&path, serde_json::Value::Null).await })
    };
    h.llm.arrived(this_call).await;
    let db = h.service.app().db().sqlite().unwrap().path().to_path_buf();
    let (wrote, busy) = tokio::task::spawn_blocking(move || {
        use tollgate_sqlite::rusqlite::Connection;
        let conn = Connection::open(db).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        let wrote = conn
            .execute_batch(
                "BEGIN IMMEDIATE; UPDATE wallets SET balance = balance + 1 WHERE id = 'probe'; COMMIT;",
            )
            .is_ok();
        let busy: i64 = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .unwrap();
        (wrote, busy)
    })
    .await
    .unwrap();
    h.llm.release();
    (wrote, busy, request.await.unwrap().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_http_llm_is_called_outside_any_database_transaction() {
    let h = Arc::new(
        Harness::start_with(
            FakeLlmConfig {
                latency: Duration::ZERO,
                failure_rate: 0.0,
            },
            LlmSettings::default(),
            true,
        )
        .await,
    );
    h.seed_letters("ivy", DATE, 2).await;
    let created = h
        .client
        .send(
            http::Method::PUT,
            &h.url("/wallets/probe"),
            r#"{"balance":0}"#,
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED);
    // Guarded: no lock and no snapshot is held while the LLM works.
    let guarded = probe_during_llm_call(&h, &format!("/users/ivy/daily-reports/{DATE}")).await;
    assert_eq!(guarded, (true, 0, StatusCode::CREATED));
    assert_eq!(h.service.app().db().lock_errors().get(CodePath::Guarded), 0);

    // The probe can fail: the naive path holds its transaction across the call, so the
    // checkpoint is blocked, and the probe's commit makes the naive write fail.
    let naive = probe_during_llm_call(&h, &format!("/naive/users/ivy/daily-reports/{DATE}")).await;
    assert_eq!(naive, (true, 1, StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(h.service.app().db().lock_errors().get(CodePath::Naive), 1);
}
