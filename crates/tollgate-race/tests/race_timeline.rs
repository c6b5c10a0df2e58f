//! `RaceConfig::timeline`: one mark per request, for the charts of the HTML report.

use tollgate_testkit::http_servers as support;

use tollgate_race::{ErrorKind, RaceConfig, SyncMode, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_every_trial_gets_one_mark_in_index_order() {
    let server = support::ok().await;
    for sync in [SyncMode::LastByte, SyncMode::None] {
        let mut config = RaceConfig::new(server.url("/"));
        config.requests = 8;
        config.trials = 2;
        config.sync = sync;
        config.timeline = true;
        let report = run(&config).await.unwrap();
        for trial in &report.per_trial {
            let indices: Vec<_> = trial.timeline.iter().map(|m| m.index).collect();
            assert_eq!(indices, (0..8).collect::<Vec<_>>(), "{sync}");
            assert!(trial.timeline.iter().all(|m| m.status == Some(200)));
            let released: Vec<u64> = trial
                .timeline
                .iter()
                .map(|m| m.released_us.unwrap())
                .collect();
            let spread = released.iter().max().unwrap() - released.iter().min().unwrap();
            // The report's spread is measured in nanoseconds; marks are in whole microseconds.
            assert!(
                spread.abs_diff(trial.send_spread_us) <= 1,
                "{sync}: {spread} vs {}",
                trial.send_spread_us
            );
            assert!(
                trial
                    .timeline
                    .iter()
                    .all(|m| m.released_us.unwrap() <= m.ended_us)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_are_marked_with_their_error() {
    let server = support::hangs_up().await;
    let mut config = RaceConfig::new(server.url("/"));
    config.requests = 3;
    config.timeline = true;
    let report = run(&config).await.unwrap();
    let marks = &report.per_trial[0].timeline;
    assert_eq!(marks.len(), 3);
    assert!(
        marks
            .iter()
            .all(|m| m.error == Some(ErrorKind::Reset) && m.status.is_none())
    );
    assert!(marks.iter().all(|m| m.released_us.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_no_timeline_is_kept_or_serialized() {
    let server = support::ok().await;
    let mut config = RaceConfig::new(server.url("/"));
    config.requests = 2;
    let report = run(&config).await.unwrap();
    assert!(report.per_trial[0].timeline.is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["per_trial"][0].get("timeline").is_none());
}
