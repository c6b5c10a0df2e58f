//! HTTP/2 single-packet mode against an `h2` server started in the test.

use tollgate_testkit::http_servers as support;

use std::sync::atomic::Ordering;

use support::http2::serve as serve_h2;
use tollgate_race::{ErrorKind, Expectation, RaceConfig, RaceError, StatusMatch, SyncMode, run};

fn s3(url: String, trials: usize) -> RaceConfig {
    let mut config = RaceConfig::new(url);
    config.method = "POST".into();
    config.requests = 20;
    config.trials = trials;
    config.sync = SyncMode::SinglePacket;
    config.expectations = vec![
        Expectation {
            status: StatusMatch::Code(201),
            count: 1,
        },
        Expectation {
            status: StatusMatch::Code(409),
            count: 19,
        },
    ];
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racy_server_is_caught_over_one_connection_per_trial() {
    let (server, connections) = serve_h2(support::racy_app(20), false).await;
    let report = run(&s3(server.url("/reports/{{trial_uuid}}"), 10))
        .await
        .unwrap();
    // The 20 streams of a trial all check before any inserts: every one gets 201.
    assert_eq!(report.violations, 10, "every trial violated");
    assert_eq!(report.status.get(&201), Some(&200), "{:?}", report.status);
    assert_eq!(
        report.status.values().sum::<usize>(),
        200,
        "{:?}",
        report.errors
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        10,
        "one connection per trial"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_server_passes_every_trial() {
    let (server, _) = serve_h2(support::guarded_app(), false).await;
    let report = run(&s3(server.url("/reports/{{trial_uuid}}"), 5))
        .await
        .unwrap();
    assert!(
        report.passed(),
        "{:?} {:?}",
        report.status,
        report.per_trial[0].error_samples
    );
    assert_eq!(
        (report.status.get(&201), report.status.get(&409)),
        (Some(&5), Some(&95))
    );
    let groups: Vec<_> = report.groups.iter().map(|g| (g.status, g.count)).collect();
    assert_eq!(groups, [(409, 95), (201, 5)]);
    assert_eq!(report.sync, SyncMode::SinglePacket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_templated_and_carry_their_bodies() {
    let (server, _) = serve_h2(support::ok_app(), false).await;
    let mut config = RaceConfig::new(server.url("/items/{{i}}"));
    config.method = "PUT".into();
    config.requests = 4;
    config.sync = SyncMode::SinglePacket;
    config.headers = vec![
        "X-Index: {{i}}".parse().unwrap(),
        "Connection: close".parse().unwrap(),
    ];
    config.body = b"item {{i}}".to_vec();
    let report = run(&config).await.unwrap();
    assert_eq!(
        report.status.get(&200),
        Some(&4),
        "{:?}",
        report.per_trial[0].error_samples
    );
    let mut bodies: Vec<_> = report
        .groups
        .iter()
        .map(|g| g.body_preview.clone())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["ok 0", "ok 1", "ok 2", "ok 3"]);
    let mut seen = server.seen.lock().unwrap().clone();
    seen.sort_by(|a, b| a.path.cmp(&b.path));
    let got: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str(), s.body.as_slice()))
        .collect();
    assert_eq!(got[0], ("PUT", "/items/0", &b"item 0"[..]));
    assert_eq!(got[3], ("PUT", "/items/3", &b"item 3"[..]));
    assert!(seen.iter().all(|s| s.header("content-length") == Some("6")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_alpn_h2_works_and_http1_only_servers_are_named() {
    let (server, _) = serve_h2(support::ok_app(), true).await;
    let mut config = RaceConfig::new(server.https_url("/"));
    config.requests = 5;
    config.insecure = true;
    config.sync = SyncMode::SinglePacket;
    let report = run(&config).await.unwrap();
    assert_eq!(
        report.status.get(&200),
        Some(&5),
        "{:?}",
        report.per_trial[0].error_samples
    );

    let http1_tls = support::tls_ok().await;
    config.url = http1_tls.https_url("/");
    let err = run(&config).await.unwrap_err();
    let RaceError::Unreachable { kind, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*kind, ErrorKind::Tls);
    assert!(message.contains("did not negotiate HTTP/2"), "{message}");

    let http1 = support::ok().await;
    config.url = http1.url("/");
    let report = run(&config).await.unwrap();
    assert_eq!(report.errors.get(&ErrorKind::Protocol), Some(&5));
    let sample = &report.per_trial[0].error_samples[&ErrorKind::Protocol];
    assert!(sample.contains("answered in HTTP/1"), "{sample}");
}
