//! Wait mode is woken by pub/sub: a waiter of a held key returns as soon as the holder
//! settles, long before its backstop sleep would end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{RedisBackend, shared_server};
use tollgate_redis::tollgate::once::{ClaimOutcome, Settle, Store};
use tollgate_testkit::{Backend, acquire, key};

const BACKSTOP: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_when_the_holder_completes_not_by_its_backstop() {
    let backend = RedisBackend::on(tokio::task::spawn_blocking(shared_server).await.unwrap());
    let (holder_store, waiter_store) = (backend.connect().await, backend.connect().await);
    let holder = acquire(&holder_store, 1).await;
    // Subscribe first (a waiter that starts after the holder settled finds out by claiming).
    let since = tokio::time::Instant::now();
    waiter_store
        .await_change(&key(), since, Duration::from_millis(1))
        .await;
    // `join!` polls the waiter first: it subscribes and parks before the holder completes.
    let waiter = async {
        let started = Instant::now();
        waiter_store.await_change(&key(), since, BACKSTOP).await;
        let claim = tollgate_testkit::request(&key(), "a", 2, Default::default());
        (started.elapsed(), waiter_store.claim(claim).await.unwrap())
    };
    let k = key();
    let completion = holder_store.complete(&k, holder, b"42".to_vec(), Duration::from_secs(10));
    let ((waited, outcome), done) = tokio::join!(waiter, completion);
    assert_eq!(done.unwrap(), Settle::Accepted);
    assert!(waited < Duration::from_secs(2), "woken after {waited:?}");
    assert_eq!(
        outcome,
        ClaimOutcome::Completed {
            result: b"42".to_vec()
        }
    );
}
