//! A lock's fence counter expires with the lock's key family: the lock is one hash whose
//! expiry (on the server's clock) is the lease plus the fence retention while held and the
//! retention once released, so nothing of a lock outlives them — and a key used again after
//! its retention starts over at fence 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tollgate_redis::redis::aio::MultiplexedConnection;
use tollgate_redis::tollgate::lock::{Locks, Wait};
use tollgate_redis::tollgate::store::{Fence, Key};
use tollgate_redis::{Durability, RedisLockStore, RedisStore};
use tollgate_testkit::server::RedisServer;

const LEASE: Duration = Duration::from_secs(5);
/// Real time on the server's clock: a released lock's fence must outlive the checks and the
/// next acquire of the loop below even on a loaded machine, so several seconds (300 ms was
/// flaky); the test waits it out once at the end, which is all it adds to the run time.
const RETENTION: Duration = Duration::from_secs(3);

async fn connection(url: &str) -> MultiplexedConnection {
    let client = tollgate_redis::redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Every key on the server with its time to live in ms.
async fn keys_and_ttls(conn: &mut MultiplexedConnection) -> Vec<(String, i64)> {
    let keys: Vec<String> = tollgate_redis::redis::cmd("KEYS")
        .arg("*")
        .query_async(conn)
        .await
        .unwrap();
    let mut found = Vec::new();
    for key in keys {
        let ttl: i64 = tollgate_redis::redis::cmd("PTTL")
            .arg(&key)
            .query_async(conn)
            .await
            .unwrap();
        found.push((key, ttl));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_counter_expires_with_the_lock_and_a_key_used_after_it_starts_at_fence_1() {
    let server = tokio::task::spawn_blocking(|| RedisServer::start().unwrap())
        .await
        .unwrap();
    let store = RedisStore::builder(server.url())
        .durability(Durability::Unchecked)
        .connect()
        .await
        .unwrap();
    let locks = Locks::new(RedisLockStore::new(store).fence_retention(RETENTION));
    let mut raw = connection(&server.url()).await;
    let key = Key::new("wallets", "w1");

    for expected in 1..=3 {
        let guard = locks.acquire(key.clone(), LEASE, Wait::Fail).await.unwrap();
        assert_eq!(guard.fence(), Fence(expected));
        let held = keys_and_ttls(&mut raw).await;
        assert_eq!(
            held.len(),
            1,
            "one key per lock, the counter inside it: {held:?}"
        );
        let ttl = held[0].1;
        let most = (LEASE + RETENTION).as_millis() as i64;
        assert!(ttl > most - 1_000 && ttl <= most, "held: {ttl} ms to live");
        guard.release().await.unwrap();
        let released = keys_and_ttls(&mut raw).await;
        assert_eq!(released.len(), 1, "the fence is kept for its retention");
        let ttl = released[0].1;
        let most = RETENTION.as_millis() as i64;
        assert!(ttl > 0 && ttl <= most, "released: {ttl} ms");
    }

    // Nothing of the lock is left once the retention is over (polled, at most 5 s past it).
    let deadline = Instant::now() + RETENTION + Duration::from_secs(5);
    while !keys_and_ttls(&mut raw).await.is_empty() {
        assert!(Instant::now() < deadline, "the lock's key never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = locks.acquire(key, LEASE, Wait::Fail).await.unwrap();
    assert_eq!(again.fence(), Fence(1), "the counter expired with the lock");
    again.release().await.unwrap();
}
