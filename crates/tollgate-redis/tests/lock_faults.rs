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

mod common;

use std::time::Duration;

use tollgate_testkit::child::ChildTest;
use tollgate_testkit::lock_faults::{
    hold_until_killed, killed_holder_is_taken_over_after_its_lease, the_store_killed_under_holders,
};
use tollgate_testkit::server::{AppendFsync, RedisOptions, RedisServer};

const URL: &str = "TOLLGATE_LOCK_HOLDER_URL";

async fn own_server(options: RedisOptions) -> RedisServer {
    let start = move || options.start().unwrap_or_else(|e| panic!("{e}"));
    tokio::task::spawn_blocking(start).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_fence_redis() {
    let server = own_server(RedisOptions::new()).await;
    let locks = common::locks(&server.url(), Duration::from_secs(5)).await;
    let env = [(URL, server.url())];
    let mut child = tokio::task::block_in_place(|| ChildTest::spawn("lock_holder_process", &env));
    killed_holder_is_taken_over_after_its_lease(&mut child, &locks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_tells_every_holder_and_after_the_restart_no_two_overlap_redis() {
    let server = own_server(RedisOptions::new().append_only(AppendFsync::Always)).await;
    let url = server.url();
    let server = std::sync::Mutex::new(server);
    let connect = |timeout| common::locks(&url, timeout);
    let kill = || server.lock().unwrap().kill().unwrap();
    let restart = || server.lock().unwrap().restart().unwrap();
    the_store_killed_under_holders(connect, kill, restart).await;
}

/// The holder process: holds `fault_key(0)` until it is killed. Run only by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by a_killed_holder_process_is_taken_over_…"]
async fn lock_holder_process() {
    let url = std::env::var(URL).unwrap_or_else(|_| {
        panic!(
            "run only by a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_\
             fence_redis, which sets {URL}"
        )
    });
    hold_until_killed(common::locks(&url, Duration::from_secs(5)).await).await;
}
