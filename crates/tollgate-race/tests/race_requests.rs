//! What is sent (templating, headers, body) and how failures are classified.

use tollgate_testkit::http_servers as support;

use std::collections::BTreeSet;
use std::time::Duration;

use tollgate_race::{ErrorKind, RaceConfig, RaceError, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_are_substituted_per_request() {
    let server = support::ok().await;
    let mut config = RaceConfig::new(server.url("/items/{{i}}?trial={{trial}}"));
    config.method = "PUT".into();
    config.requests = 8;
    config.trials = 2;
    config.headers = vec![
        "X-Index: {{i}}".parse().unwrap(),
        "Idempotency-Key: {{uuid}}".parse().unwrap(),
    ];
    config.body = b"{\"trial\":\"{{trial_uuid}}\"}".to_vec();
    let report = run(&config).await.unwrap();
    assert_eq!(report.status.get(&200), Some(&16));
    // Bodies differ by index: 8 groups per trial, one response each.
    assert!(
        report
            .per_trial
            .iter()
            .all(|t| t.groups.len() == 8 && t.groups[0].count == 1)
    );

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 16);
    let paths: BTreeSet<_> = seen.iter().map(|s| s.path.clone()).collect();
    let expected: BTreeSet<_> = (0..8)
        .flat_map(|i| (0..2).map(move |t| format!("/items/{i}?trial={t}")))
        .collect();
    assert_eq!(paths, expected);
    assert!(seen.iter().all(|s| {
        s.method == "PUT"
            && s.path
                .starts_with(&format!("/items/{}?", s.header("x-index").unwrap()))
    }));
    let keys: BTreeSet<_> = seen
        .iter()
        .map(|s| s.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(keys.len(), 16, "one fresh uuid per request");
    assert!(keys.iter().all(|k| k.len() == 36));
    let bodies: BTreeSet<_> = seen.iter().map(|s| s.body.clone()).collect();
    assert_eq!(bodies.len(), 2, "one trial uuid per trial");
    assert!(
        seen.iter()
            .all(|s| s.header("content-length") == Some("48"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_counts_timeouts() {
    let server = support::silent().await;
    let mut config = RaceConfig::new(server.url("/"));
    config.requests = 5;
    config.timeout = Duration::from_millis(200);
    config.expectations = vec!["200=5".parse().unwrap()];
    let report = run(&config).await.unwrap();
    assert_eq!(report.errors.get(&ErrorKind::Timeout), Some(&5));
    assert!(report.status.is_empty());
    assert_eq!(report.violations, 1);
    assert_eq!(report.invariants[0].observed, [0]);
    let sample = &report.per_trial[0].error_samples[&ErrorKind::Timeout];
    assert!(sample.contains("waiting for the response"), "{sample}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_up_counts_resets() {
    let server = support::hangs_up().await;
    let mut config = RaceConfig::new(server.url("/"));
    config.requests = 4;
    let report = run(&config).await.unwrap();
    assert_eq!(report.errors.get(&ErrorKind::Reset), Some(&4));
    assert!(report.passed(), "no invariant declared, none violated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_an_error() {
    let addr = support::closed_port().await;
    let err = run(&RaceConfig::new(format!("http://{addr}/")))
        .await
        .unwrap_err();
    let RaceError::Unreachable { kind, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*kind, ErrorKind::Connect);
    assert!(
        err.to_string()
            .starts_with(&format!("could not reach {addr}: ")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configurations_are_rejected_before_sending() {
    type Mutation = fn(&mut RaceConfig);
    let cases: [(&str, Mutation); 4] = [
        ("requests must be between 1", |c| c.requests = 0),
        ("trials must be at least 1", |c| c.trials = 0),
        ("not a valid HTTP method", |c| c.method = "GE T".into()),
        ("invalid URL `ftp://x/`", |c| c.url = "ftp://x/".into()),
    ];
    for (message, mutate) in cases {
        let mut config = RaceConfig::new("http://127.0.0.1:9/");
        mutate(&mut config);
        let err = run(&config).await.unwrap_err().to_string();
        assert!(err.contains(message), "{err}");
    }
}
