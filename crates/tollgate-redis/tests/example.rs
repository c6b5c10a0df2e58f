//! The crate docs' example, run for real on a throw-away server with `appendonly yes` and
//! `appendfsync always` (a doctest cannot start one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_redis::RedisStore;
use tollgate_redis::tollgate::once::{Failure, Fingerprint, Key, Once};
use tollgate_testkit::server::{AppendFsync, RedisOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crate_example_runs_once_then_replays() {
    let server = tokio::task::spawn_blocking(|| {
        RedisOptions::new()
            .append_only(AppendFsync::Always)
            .start()
            .unwrap_or_else(|e| panic!("{e}"))
    })
    .await
    .unwrap();
    let once = Once::new(RedisStore::connect(server.url()).await.unwrap());
    let key = Key::new("daily-report", "user-1/2026-11-21");
    let paid_call = || async { Ok::<_, Failure<String>>(42) };
    let first = once
        .run(key.clone(), Fingerprint::new("v1"), paid_call)
        .await
        .unwrap();
    let again = once
        .run(key, Fingerprint::new("v1"), paid_call)
        .await
        .unwrap();
    assert_eq!(
        (first.value, first.replayed, again.value, again.replayed),
        (42, false, 42, true)
    );
}
