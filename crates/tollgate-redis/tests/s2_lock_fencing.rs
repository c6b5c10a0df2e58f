//! S2 on Redis: a lock holder paused past its lease writes a stale balance.
//!
//! - naive: aioredlock's lock (`SET key value NX PX`, no fence); holder A is a child process
//!   **SIGSTOPped** after reading the balance; B locks once A's key expired and buys a drink;
//!   A is resumed and writes its stale balance → the purchase is lost (the test asserts it);
//! - tollgate: the same schedule with [`RedisLockStore`] and [`fenced_hset`]: A's write is
//!   rejected by the fence, the balance is right, and A's lost-lease signal fired when it woke;
//! - the store paused instead of the holder: A's renewals cannot succeed, so A is told through
//!   its lost-lease signal before its lease is over — before B can take the key.
//!
//! The child is this binary run again with `TOLLGATE_S2_URL` set (ignored test
//! `holder_process`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tokio::time::Instant;
use tollgate_redis::fenced_hset;
use tollgate_redis::redis::AsyncCommands;
use tollgate_redis::redis::aio::MultiplexedConnection;
use tollgate_redis::tollgate::lock::Wait;
use tollgate_redis::tollgate::store::Fence;
use tollgate_testkit::child::ChildTest;
use tollgate_testkit::s2_lock::{
    DEPOSIT, HOLDER_LEASE, PRICE, START_BALANCE, pause_the_holder_while, paused_holder,
    told_before_the_lease_ends_while_the_store_is_paused, wallet_key,
};
use tollgate_testkit::server::RedisServer;

const URL: &str = "TOLLGATE_S2_URL";
const MODE: &str = "TOLLGATE_S2_MODE";
const WALLET: &str = "wallet:1";
const NAIVE_LOCK: &str = "naive-lock:wallet:1";

async fn own_server() -> RedisServer {
    let start = || RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    tokio::task::spawn_blocking(start).await.unwrap()
}

async fn data(url: &str) -> MultiplexedConnection {
    let client = tollgate_redis::redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn balance(mut conn: MultiplexedConnection) -> i64 {
    conn.hget(WALLET, "balance").await.unwrap()
}

async fn fenced_write(mut conn: MultiplexedConnection, fence: Fence, balance: i64) -> bool {
    let value = balance.to_string();
    let fields = [("balance", value.as_bytes())];
    fenced_hset(&mut conn, WALLET, "fence", fence, &fields)
        .await
        .unwrap()
}

/// aioredlock's acquisition: `SET NX PX`, retried every 10 ms (its retry policy) until it
/// succeeds or 30 s passed.
async fn naive_lock(conn: &mut MultiplexedConnection, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut set = tollgate_redis::redis::cmd("SET");
        set.arg(NAIVE_LOCK).arg(value).arg("NX").arg("PX");
        set.arg(HOLDER_LEASE.as_millis() as u64);
        let ok: Option<String> = set.query_async(conn).await.unwrap();
        if ok.is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "the naive lock never came free");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the schedule with holder A in a child process in `mode` (`naive` or `fenced`).
/// Returns what A reported and the final balance.
async fn paused_holder_schedule(mode: &str) -> (tollgate_testkit::s2_lock::PausedWrite, i64) {
    let server = own_server().await;
    let url = server.url();
    let mut b = data(&url).await;
    let _: () = b
        .hset_multiple(WALLET, &[("balance", START_BALANCE), ("fence", 0)])
        .await
        .unwrap();
    let env = [(URL, url.clone()), (MODE, mode.to_owned())];
    let mut child = tokio::task::block_in_place(|| ChildTest::spawn("holder_process", &env));
    let next_holder = async {
        if mode == "naive" {
            naive_lock(&mut b, "b").await;
            let read = balance(b.clone()).await;
            let _: () = b.hset(WALLET, "balance", read - PRICE).await.unwrap();
            return;
        }
        let locks = common::locks(&url, Duration::from_secs(5)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let guard = locks.acquire(wallet_key(), HOLDER_LEASE, Wait::Until(deadline));
        let guard = guard.await.unwrap();
        let read = balance(b.clone()).await;
        assert!(fenced_write(b.clone(), guard.fence(), read - PRICE).await);
        guard.release().await.unwrap();
    };
    let a = pause_the_holder_while(&mut child, next_holder).await;
    (a, balance(b).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_naive_set_nx_px_lock_loses_the_update_of_a_paused_holder_redis() {
    let (a, balance) = paused_holder_schedule("naive").await;
    assert!(a.applied, "nothing stops the naive holder's stale write");
    assert_eq!(
        balance,
        START_BALANCE + DEPOSIT,
        "B's purchase is lost: the drink was free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_paused_holder_stale_write_is_rejected_by_the_fence_redis() {
    let (a, balance) = paused_holder_schedule("fenced").await;
    assert_eq!(a.fence, 1);
    assert!(!a.applied, "the stale holder's write must be rejected");
    assert_eq!(
        balance,
        START_BALANCE - PRICE,
        "the hash keeps B's purchase"
    );
    assert_eq!(a.lost, "Expired", "A is told it lost the lock as it wakes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_holder_is_told_before_its_lease_ends_when_the_store_is_paused_redis() {
    let server = own_server().await;
    let url = server.url();
    let wallet = data(&url).await;
    let _: () = wallet
        .clone()
        .hset_multiple(WALLET, &[("balance", START_BALANCE), ("fence", 0)])
        .await
        .unwrap();
    let server = std::sync::Mutex::new(server);
    told_before_the_lease_ends_while_the_store_is_paused(
        |timeout| common::locks(&url, timeout),
        || server.lock().unwrap().pause().unwrap(),
        || server.lock().unwrap().resume().unwrap(),
        || balance(wallet.clone()),
        |fence, balance| fenced_write(wallet.clone(), fence, balance),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_hset_accepts_the_holder_and_rejects_an_older_fence_redis() {
    let server = own_server().await;
    let mut conn = data(&server.url()).await;
    let write = |fence, balance: &'static [u8]| {
        let mut conn = conn.clone();
        async move {
            fenced_hset(
                &mut conn,
                WALLET,
                "fence",
                Fence(fence),
                &[("balance", balance)],
            )
            .await
        }
    };
    assert!(
        write(2, b"0").await.unwrap(),
        "a hash without a fence takes any"
    );
    assert!(write(2, b"10").await.unwrap(), "the holder writes again");
    assert!(
        !write(1, b"1500").await.unwrap(),
        "an older fence is rejected"
    );
    let nothing = fenced_hset(&mut conn, WALLET, "fence", Fence(3), &[]).await;
    assert_eq!(
        nothing.unwrap_err().kind(),
        tollgate_redis::tollgate::store::StoreErrorKind::Rejected
    );
    let mut read = tollgate_redis::redis::cmd("HMGET");
    read.arg(WALLET).arg("balance").arg("fence");
    let stored: (i64, u64) = read.query_async(&mut conn).await.unwrap();
    assert_eq!(stored, (10, 2));
}

/// Holder A: locks the wallet (naive or fenced), reads, waits to be told to write (it is
/// paused meanwhile), writes its stale balance. Run only by the schedule above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the s2_* tests"]
async fn holder_process() {
    let (Ok(url), Ok(mode)) = (std::env::var(URL), std::env::var(MODE)) else {
        panic!("run only by the s2_* tests of this file, which set {URL} and {MODE}");
    };
    let conn = data(&url).await;
    if mode == "naive" {
        let mut writer = conn.clone();
        naive_lock(&mut writer, "a").await;
        let write = |b: i64| async move {
            let _: () = writer.hset(WALLET, "balance", b).await.unwrap();
            true
        };
        return paused_holder(Fence(0), balance(conn), write, None).await;
    }
    let locks = common::locks(&url, Duration::from_secs(5)).await;
    let guard = locks.try_acquire(wallet_key(), HOLDER_LEASE).await.unwrap();
    let guard = guard.expect("the wallet's lock is free");
    let fence = guard.fence();
    let write = |b| fenced_write(conn.clone(), fence, b);
    paused_holder(fence, balance(conn.clone()), write, Some(guard.lost())).await;
}
