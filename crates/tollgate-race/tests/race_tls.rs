//! HTTPS targets: self-signed certificates need `insecure`, and say so when missing.

use tollgate_testkit::http_servers as support;

use tollgate_race::{ErrorKind, RaceConfig, RaceError, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_accepts_a_self_signed_certificate() {
    let server = support::tls_ok().await;
    let mut config = RaceConfig::new(server.https_url("/"));
    config.requests = 10;
    config.insecure = true;
    config.expectations = vec!["2xx=10".parse().unwrap()];
    let report = run(&config).await.unwrap();
    assert!(
        report.passed(),
        "{:?} {:?}",
        report.status,
        report.per_trial[0].error_samples
    );
    assert_eq!(report.groups[0].body_preview, "secure");
    assert!(report.send_spread_us.max > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_is_refused_by_default() {
    let server = support::tls_ok().await;
    let mut config = RaceConfig::new(server.https_url("/"));
    config.requests = 3;
    let err = run(&config).await.unwrap_err();
    let RaceError::Unreachable { kind, message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*kind, ErrorKind::Tls);
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert!(message.contains("use --insecure"), "{message}");
}
