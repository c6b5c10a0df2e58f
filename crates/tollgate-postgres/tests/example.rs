//! The crate docs' example, run for real on a throw-away server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use tollgate_postgres::PostgresStore;
use tollgate_postgres::tollgate::once::{Failure, Fingerprint, Key, Once};

async fn example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let once = Once::new(PostgresStore::connect(url).await?);
    let key = Key::new("daily-report", "user-1/2026-11-21");
    let paid_call = || async { Ok::<_, Failure<String>>(42) };
    let first = once
        .run(key.clone(), Fingerprint::new("v1"), paid_call)
        .await?;
    let again = once.run(key, Fingerprint::new("v1"), paid_call).await?;
    assert_eq!(
        (first.value, first.replayed, again.value, again.replayed),
        (42, false, 42, true)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crate_example_runs() {
    let server = support::shared_server().await;
    example(&server.url()).await.unwrap();
}
