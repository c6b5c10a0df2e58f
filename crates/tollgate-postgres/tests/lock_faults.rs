//! Lock faults on PostgreSQL, each with exact outcomes:
//!
//! - a holder *process* SIGKILLed: the key stays held until its lease ends on the server's
//!   clock, then the next holder acquires it with fence + 1;
//! - the server SIGKILLed under 10 holders: every holder's lost-lease signal fires before its
//!   lease ended; after the restart (the lease rows survive) 100 tasks over those keys never
//!   overlap and their fences are above the dead holders';
//! - no session-level advisory lock: while 10 keys are held the server has no advisory lock
//!   at all, and the keys stay held (the lease rows) when every session of the holder's client
//!   is terminated.
//!
//! The holder process is this binary run again with `TOLLGATE_LOCK_HOLDER_URL` set (ignored
//! test `lock_holder_process`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tollgate_postgres::tollgate::lock::LockStore;
use tollgate_testkit::child::ChildTest;
use tollgate_testkit::lock_faults::{
    fault_key, hold_until_killed, killed_holder_is_taken_over_after_its_lease,
    the_store_killed_under_holders,
};

const URL: &str = "TOLLGATE_LOCK_HOLDER_URL";
const SCHEMA: &str = "TOLLGATE_LOCK_HOLDER_SCHEMA";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_fence_postgres() {
    let server = support::shared_server().await;
    let (url, schema) = (server.url(), support::fresh_schema());
    let locks = support::locks(&url, &schema, support::TIMEOUT).await;
    let env = [(URL, url), (SCHEMA, schema)];
    let mut child = tokio::task::block_in_place(|| ChildTest::spawn("lock_holder_process", &env));
    killed_holder_is_taken_over_after_its_lease(&mut child, &locks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_tells_every_holder_and_after_the_restart_no_two_overlap_postgres() {
    let start = || support::options().start().unwrap();
    let server = tokio::task::spawn_blocking(start).await.unwrap();
    let url = server.url();
    let server = std::sync::Mutex::new(server);
    let connect = |timeout| support::locks(&url, "tollgate", timeout);
    let kill = || server.lock().unwrap().kill().unwrap();
    let restart = || server.lock().unwrap().restart().unwrap();
    the_store_killed_under_holders(connect, kill, restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_is_a_lease_row_not_a_session_advisory_lock_postgres() {
    // A server of its own: the store's migrations take transaction-level advisory locks, and
    // other tests' migrations must not show up in `pg_locks` here.
    let start = || support::options().start().unwrap();
    let server = tokio::task::spawn_blocking(start).await.unwrap();
    let url = server.url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let holder_url = format!("{url}{sep}application_name=tollgate_holder");
    let holder = support::locks(&holder_url, "tollgate", support::TIMEOUT).await;
    let other = support::locks(&url, "tollgate", support::TIMEOUT).await;
    let lease = Duration::from_secs(60);
    let mut guards = Vec::new();
    for i in 0..10 {
        let guard = holder.try_acquire(fault_key(i), lease).await.unwrap();
        guards.push(guard.expect("a free key"));
    }
    let (observer, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let count = |sql: &'static str| {
        let observer = &observer;
        async move { observer.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'";
    assert_eq!(
        count(advisory).await,
        0,
        "a held key takes no advisory lock"
    );
    let terminated = count(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'tollgate_holder') AS t",
    )
    .await;
    assert!(
        terminated >= 1,
        "the holder's sessions were found and terminated"
    );
    for (i, guard) in guards.iter().enumerate() {
        assert!(
            other
                .try_acquire(fault_key(i), lease)
                .await
                .unwrap()
                .is_none(),
            "key {i} stays held after the holder's sessions ended"
        );
        let record = other.store().read(&fault_key(i)).await.unwrap();
        let holder = record.and_then(|r| r.holder()).map(|token| token.fence);
        assert_eq!(
            holder,
            Some(guard.fence()),
            "key {i}: the holder's lease row"
        );
    }
    assert_eq!(count(advisory).await, 0);
}

/// The holder process: holds `fault_key(0)` until it is killed. Run only by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by a_killed_holder_process_is_taken_over_…"]
async fn lock_holder_process() {
    let (Ok(url), Ok(schema)) = (std::env::var(URL), std::env::var(SCHEMA)) else {
        panic!(
            "run only by a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_\
             fence_postgres, which sets {URL} and {SCHEMA}"
        );
    };
    hold_until_killed(support::locks(&url, &schema, support::TIMEOUT).await).await;
}
