//! Lock faults on Redis, each with exact outcomes:
//!
//! - a holder *process* SIGKILLed: the key stays held until its lease ends on the server's
//!   clock, then the next holder acquires it with fence + 1;
//! - the server SIGKILLed under 10 holders: every holder's lost-lease signal fires before its
//!   lease ended; after the restart (`appendfsync always`: the lock hashes survive) 100 tasks
//!   over those keys never overlap and their fences are above the dead holders'.
//!
//! The holder process is this binary run again with `TOLLGATE_LOCK_HOLDER_URL` set (ignored
//! test `lock_holder_process`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tollgate_redis::tollgate::lock::Locks;
use tollgate_redis::tollgate::store::Fence;
use tollgate_redis::{Durability, RedisLockStore, RedisStore};
use tollgate_testkit::child::ChildTest;
use tollgate_testkit::lock_faults::{
    FAULT_LEASE, after_the_restart_no_two_holders_overlap, every_holder_is_told_when_the_store_dies,
    fault_key, hold_until_killed, killed_holder_is_taken_over_after_its_lease, lease_ends,
};
use tollgate_testkit::server::{AppendFsync, RedisOptions, RedisServer};

const URL: &str = "TOLLGATE_LOCK_HOLDER_URL";

async fn own_server(options: RedisOptions) -> RedisServer {
    let start = move || options.start().unwrap_or_else(|e| panic!("{e}"));
    tokio::task::spawn_blocking(start).await.unwrap()
}

/// The locks on the server at `url`, every call bounded by `timeout`.
async fn locks(url: &str, timeout: Duration) -> Locks<RedisLockStore> {
    let store = RedisStore::builder(url)
        .durability(Durability::Unchecked)
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    Locks::new(RedisLockStore::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_fence_redis() {
    let server = own_server(RedisOptions::new()).await;
    let locks = locks(&server.url(), Duration::from_secs(5)).await;
    let env = [(URL, server.url())];
    let mut child = tokio::task::block_in_place(|| ChildTest::spawn("lock_holder_process", &env));
    killed_holder_is_taken_over_after_its_lease(&mut child, &locks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_tells_every_holder_and_after_the_restart_no_two_overlap_redis() {
    let options = RedisOptions::new().append_only(AppendFsync::Always);
    let mut server = own_server(options).await;
    let url = server.url();
    let a = locks(&url, Duration::from_millis(300)).await;
    let mut holders = Vec::new();
    for i in 0..10 {
        let guard = a.try_acquire(fault_key(i), FAULT_LEASE).await.unwrap();
        holders.push(guard.expect("a free key"));
    }
    let ends = lease_ends(&a, holders.len()).await;
    every_holder_is_told_when_the_store_dies(&holders, &ends, || server.kill().unwrap()).await;
    let dead: Vec<Fence> = holders.iter().map(|g| g.fence()).collect();
    drop(holders);

    tokio::task::block_in_place(|| server.restart()).unwrap();
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(locks(&url, Duration::from_secs(5)).await);
    }
    after_the_restart_no_two_holders_overlap(&clients, &dead).await;
}

/// The holder process: holds `fault_key(0)` until it is killed. Run only by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by a_killed_holder_process_is_taken_over_…"]
async fn lock_holder_process() {
    let Ok(url) = std::env::var(URL) else {
        return;
    };
    hold_until_killed(locks(&url, Duration::from_secs(5)).await).await;
}
