//! Durability, stated and tested: with `appendonly yes` + `appendfsync always` a SIGKILL of
//! the server loses no completed record (the key replays, the work is not run again); without
//! persistence the records are gone after a restart, and the changed `run_id` tells; a store
//! asked for a durability the server does not give refuses to start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tollgate_redis::tollgate::once::{Failure, Fingerprint, Key, Once, Store};
use tollgate_redis::tollgate::store::{StoreError, StoreErrorKind};
use tollgate_redis::{Durability, DurabilityRefused, RedisStore};
use tollgate_testkit::server::{AppendFsync, RedisOptions, RedisServer};

const KEYS: usize = 20;

async fn start(options: RedisOptions) -> RedisServer {
    tokio::task::spawn_blocking(move || options.start().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap()
}

/// SIGKILL, then start again on the same port and directory.
async fn crash_and_restart(server: RedisServer) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.kill().unwrap();
        server.restart().unwrap();
        server
    })
    .await
    .unwrap()
}

/// Retries `op` while the store reports a transient failure (the connection reconnecting
/// after the restart), for at most 10 s.
async fn until_reachable<T, F, Fut>(mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) if e.kind().is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("store still failing: {e}"),
        }
    }
}

async fn run_all(once: &Once<RedisStore>, runs: &Arc<AtomicUsize>) -> usize {
    let mut replayed = 0;
    for i in 0..KEYS {
        let runs = Arc::clone(runs);
        let work = move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Failure<String>>(i)
        };
        let key = Key::new("paid", i.to_string());
        let out = once.run(key, Fingerprint::new("v1"), work).await.unwrap();
        assert_eq!(out.value, i);
        replayed += usize::from(out.replayed);
    }
    replayed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_appendfsync_always_a_sigkill_loses_no_completed_record() {
    let server = start(RedisOptions::new().append_only(AppendFsync::Always)).await;
    let store = RedisStore::connect(server.url()).await.unwrap(); // Durability::Fsync
    let once = Once::new(store.clone());
    let runs = Arc::new(AtomicUsize::new(0));
    assert_eq!(run_all(&once, &runs).await, 0);
    let server = crash_and_restart(server).await;
    let key = Key::new("paid", "0");
    until_reachable(|| store.read(&key)).await;
    assert_eq!(run_all(&once, &runs).await, KEYS, "every key replays");
    assert_eq!(runs.load(Ordering::SeqCst), KEYS, "no work ran twice");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_persistence_a_sigkill_loses_the_records_and_the_run_id_tells() {
    let server = start(RedisOptions::new()).await;
    let store = RedisStore::builder(server.url())
        .durability(Durability::Unchecked)
        .connect()
        .await
        .unwrap();
    let once = Once::new(store.clone());
    let runs = Arc::new(AtomicUsize::new(0));
    run_all(&once, &runs).await;
    let before = store.server_run_ids().await.unwrap();
    let server = crash_and_restart(server).await;
    let key = Key::new("paid", "0");
    let record = until_reachable(|| store.read(&key)).await;
    assert_eq!(record, None, "the completed record is lost");
    let after = store.server_run_ids().await.unwrap();
    assert_ne!(
        before, after,
        "a new run_id tells that the server restarted empty"
    );
    assert_eq!(run_all(&once, &runs).await, 0, "nothing replays");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2 * KEYS,
        "every work ran again"
    );
    drop(server);
}

fn refusal(e: &StoreError) -> &DurabilityRefused {
    assert_eq!(e.kind(), StoreErrorKind::Rejected, "{e}");
    e.source()
        .and_then(|s| s.downcast_ref::<DurabilityRefused>())
        .unwrap_or_else(|| panic!("not a durability refusal: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_fsync_every_write_is_refused_when_fsync_is_asked() {
    let volatile = start(RedisOptions::new()).await;
    let e = RedisStore::connect(volatile.url()).await.unwrap_err();
    let refused = refusal(&e);
    assert_eq!(
        (refused.appendonly.as_str(), refused.asked),
        ("no", Durability::Fsync)
    );
    assert!(e.to_string().contains("appendfsync always"), "{e}");

    let everysec = start(RedisOptions::new().append_only(AppendFsync::EverySec)).await;
    let e = RedisStore::connect(everysec.url()).await.unwrap_err();
    assert_eq!(refusal(&e).appendfsync, "everysec");
    let accepted = RedisStore::builder(everysec.url())
        .durability(Durability::EverySecond)
        .connect()
        .await;
    assert!(accepted.is_ok(), "everysec gives Durability::EverySecond");
    let e = RedisStore::builder(volatile.url())
        .durability(Durability::EverySecond)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(refusal(&e).asked, Durability::EverySecond);
}
