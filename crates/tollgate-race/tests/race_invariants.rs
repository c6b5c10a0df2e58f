//! The S3 acceptance test as a tool: a racy server is caught, a guarded one passes.

use tollgate_testkit::http_servers as support;

use tollgate_race::{Expectation, RaceConfig, StatusMatch, SyncMode, run};

fn s3_config(url: String, trials: usize) -> RaceConfig {
    let mut config = RaceConfig::new(url);
    config.method = "POST".into();
    config.requests = 20;
    config.trials = trials;
    config.expectations = vec![expect(201, 1), expect(409, 19)];
    config
}

fn expect(code: u16, count: usize) -> Expectation {
    Expectation {
        status: StatusMatch::Code(code),
        count,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racy_server_is_caught_in_every_trial() {
    // Its 20 racers of a trial all check before any inserts: every one gets 201.
    let server = support::racy(20).await;
    let report = run(&s3_config(server.url("/reports/{{trial_uuid}}"), 10))
        .await
        .unwrap();

    assert_eq!((report.trials, report.per_trial.len()), (10, 10));
    assert_eq!(report.violations, 10, "every trial violated");
    assert!(!report.passed());
    assert_eq!(report.violation_rate, report.violations as f64 / 10.0);
    let created = &report.invariants[0];
    assert_eq!(created.expect.to_string(), "201=1");
    assert_eq!(created.violated_trials, report.violations);
    assert_eq!(created.observed, vec![20; 10], "20 reports created a trial");
    assert_eq!(
        report.status.values().sum::<usize>(),
        200,
        "every request answered"
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_server_passes_every_trial() {
    let server = support::guarded().await;
    let report = run(&s3_config(server.url("/reports/{{trial_uuid}}"), 10))
        .await
        .unwrap();

    assert!(report.passed(), "{:#?}", report.invariants);
    assert_eq!((report.violations, report.violation_rate), (0, 0.0));
    for trial in &report.per_trial {
        assert_eq!(trial.status.get(&201), Some(&1), "trial {}", trial.trial);
        assert_eq!(trial.status.get(&409), Some(&19), "trial {}", trial.trial);
        let groups: Vec<_> = trial.groups.iter().map(|g| (g.status, g.count)).collect();
        assert_eq!(groups, [(409, 19), (201, 1)]);
        assert!(trial.held);
    }
    assert_eq!(report.status.get(&201), Some(&10));
    assert_eq!(report.status.get(&409), Some(&190));
    assert_eq!(report.invariants[1].observed, vec![19; 10]);
    assert_eq!(report.latency_ms.samples, 200);
    let l = report.latency_ms;
    assert!(
        l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max && l.p50 > 0.0,
        "{l:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shared_key_across_trials_is_rejected_after_the_first() {
    // Without `{{trial_uuid}}` the trials share a key: only the first can create it.
    let server = support::guarded().await;
    let report = run(&s3_config(server.url("/reports/fixed"), 3))
        .await
        .unwrap();
    let created: Vec<_> = report
        .per_trial
        .iter()
        .map(|t| t.invariants[0].observed)
        .collect();
    assert_eq!(created, [1, 0, 0]);
    assert_eq!(report.violations, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sync_modes_report_a_spread_per_trial() {
    let server = support::ok().await;
    for sync in [SyncMode::LastByte, SyncMode::None] {
        let mut config = RaceConfig::new(server.url("/"));
        config.requests = 30;
        config.trials = 3;
        config.sync = sync;
        config.expectations = vec!["200=30".parse().unwrap()];
        let report = run(&config).await.unwrap();
        assert!(report.passed(), "{sync}: {:?}", report.status);
        assert_eq!(report.sync, sync);
        let spreads: Vec<_> = report.per_trial.iter().map(|t| t.send_spread_us).collect();
        assert!(spreads.iter().all(|&s| s > 0), "{sync}: {spreads:?}");
        assert_eq!(report.send_spread_us.max, *spreads.iter().max().unwrap());
    }
}
