//! Every key the store writes expires on the server's own clock: finished records at their
//! retention (plus the grace), attempts in progress after their lease plus the lapsed
//! retention, unknown ones after the lapsed retention. There is no fence counter key to leak
//! (Redisson #6510): a record is exactly one key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tollgate_redis::tollgate::once::{
    ClaimOutcome, ClaimRequest, Fingerprint, Key, OnExpired, Owner, Settle, Store, Token,
};
use tollgate_redis::{Durability, RedisStore};
use tollgate_testkit::server::{RedisOptions, RedisServer};

const KEYS: usize = 10_000;
const RETENTION: Duration = Duration::from_millis(300);
const GRACE: Duration = Duration::from_millis(100);
const LEASE: Duration = Duration::from_millis(100);
/// Real time on the server's clock: an attempt's record must outlive its lease by long enough
/// for the checks (and, in the lapsed test, the marking claims) to find it even on a loaded
/// machine, so several seconds (200 ms was flaky). The lapsed test waits it out once at the
/// end, which is all it adds to the run time.
const LAPSED: Duration = Duration::from_secs(3);

async fn server(options: RedisOptions) -> RedisServer {
    tokio::task::spawn_blocking(|| options.start().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap()
}

/// `DEBUG SET-ACTIVE-EXPIRE <on>`: whether the server reclaims expired keys in the background.
/// Off, an expired key stays counted by `DBSIZE` until something reads it (nothing here does).
async fn active_expire(url: &str, on: bool) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(u8::from(on))
        .query_async(&mut conn)
        .await
        .unwrap();
}

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .durability(Durability::Unchecked)
        .expiry_grace(GRACE)
        .lapsed_retention(LAPSED)
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

fn request(key: Key, on_expired: OnExpired) -> ClaimRequest {
    ClaimRequest {
        key,
        fingerprint: Fingerprint::new("fp"),
        owner: Owner::random(),
        lease: LEASE,
        on_expired,
        waiting_for: None,
    }
}

/// Claims the fresh `key` and returns the token of its attempt.
async fn acquire(store: &RedisStore, key: &Key) -> Token {
    match store
        .claim(request(key.clone(), OnExpired::TakeOver))
        .await
        .unwrap()
    {
        ClaimOutcome::Acquired { token, .. } => token,
        other => panic!("a fresh key is acquired, got {other:?}"),
    }
}

/// Polls the server's key count until it is 0, for at most `within`.
async fn wait_until_empty(url: &str, within: Duration) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + within;
    loop {
        let left: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn key_count(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keys_completed_and_past_retention_leave_zero_keys() {
    let server = server(RedisOptions::new().setting("enable-debug-command", "local")).await;
    let store = store(&server).await;
    // The first records expire while the last are still written: with the background expiry
    // off, every key written is still counted at the end, so the count below is exact.
    active_expire(&server.url(), false).await;
    let in_flight = Arc::new(Semaphore::new(64));
    let mut tasks = JoinSet::new();
    for i in 0..KEYS {
        let (store, permit) = (store.clone(), Arc::clone(&in_flight).acquire_owned().await);
        tasks.spawn(async move {
            let _permit = permit;
            let key = Key::new("expiry", i.to_string());
            let token = acquire(&store, &key).await;
            store
                .complete(&key, token, b"done".to_vec(), RETENTION)
                .await
                .unwrap()
        });
    }
    let mut accepted = 0;
    while let Some(done) = tasks.join_next().await {
        accepted += usize::from(done.unwrap() == Settle::Accepted);
    }
    assert_eq!(accepted, KEYS);
    let written = key_count(&server.url()).await;
    assert_eq!(
        written, KEYS as u64,
        "one key per record, no fence counters: {written} keys for {KEYS} records"
    );
    active_expire(&server.url(), true).await;
    let left = wait_until_empty(&server.url(), Duration::from_secs(20)).await;
    assert_eq!(left, 0, "keys left after retention");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_and_unknown_attempts_expire_after_the_lapsed_retention() {
    let server = server(RedisOptions::new()).await;
    let store = store(&server).await;
    let keys: Vec<Key> = (0..100)
        .map(|i| Key::new("lapsed", i.to_string()))
        .collect();
    for key in &keys {
        let outcome = store.claim(request(key.clone(), OnExpired::TakeOver)).await;
        assert!(matches!(outcome.unwrap(), ClaimOutcome::Acquired { .. }));
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys_now: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys_now.len(), 100);
    for k in &keys_now {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        let most = i64::try_from((LEASE + LAPSED).as_millis()).unwrap();
        assert!(
            ttl > 0 && ttl <= most,
            "{k} expires within lease + lapsed: {ttl} ms"
        );
    }
    // Half of them, once their lease ran out, are marked unknown (a new expiry) by a claim.
    let deadline = Instant::now() + Duration::from_secs(5);
    for key in &keys[..50] {
        loop {
            let req = request(key.clone(), OnExpired::MarkUnknown);
            match store.claim(req).await.unwrap() {
                ClaimOutcome::Unknown { .. } => break,
                ClaimOutcome::InProgress { .. } if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => panic!("expected the lapsed attempt marked unknown, got {other:?}"),
            }
        }
    }
    let left = wait_until_empty(&server.url(), LAPSED + Duration::from_secs(10)).await;
    assert_eq!(left, 0, "keys left after lease + lapsed retention");
}

/// The remaining time to live, in ms, of the one key matching `pattern` (`PTTL`: -1 none).
async fn pttl(url: &str, pattern: &str) -> i64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Durations at both ends reach the scripts as expiries Redis accepts: a zero retention or
/// grace (`PX 0` is refused) and `Duration::MAX` for "keep it" (past `i64` it turned negative,
/// and `PEXPIRE` with a negative time deletes the key: a lock acquired and not held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_unbounded_durations_are_kept_as_the_shortest_and_the_longest_expiry() {
    use tollgate_redis::RedisLockStore;
    use tollgate_redis::tollgate::lock::{Acquisition, LockStore};

    let server = server(RedisOptions::new()).await;
    let zero = RedisStore::builder(server.url())
        .durability(Durability::Unchecked)
        .expiry_grace(Duration::ZERO)
        .lapsed_retention(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let key = Key::new("edges", "retried");
    let token = acquire(&zero, &key).await;
    let failed = zero
        .fail(&key, token, b"busy".to_vec(), true, Duration::ZERO)
        .await;
    assert_eq!(
        failed.unwrap(),
        Settle::Accepted,
        "a retryable failure kept for 0 ms"
    );

    let key = Key::new("edges", "kept");
    let token = acquire(&zero, &key).await;
    let done = zero
        .complete(&key, token, b"done".to_vec(), Duration::MAX)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted, "a result kept \"forever\"");
    let pttl = pttl(&server.url(), "*edgeskept*").await;
    assert!(
        pttl > 1 << 49,
        "kept for the longest expiry, not deleted: PTTL {pttl}"
    );

    let locks = RedisLockStore::new(zero.clone()).fence_retention(Duration::MAX);
    let lock = Key::new("edges", "lock");
    let acquired = locks
        .acquire(&lock, Owner::random(), Duration::MAX)
        .await
        .unwrap();
    assert!(
        matches!(acquired, Acquisition::Acquired { .. }),
        "{acquired:?}"
    );
    let again = locks.acquire(&lock, Owner::random(), LEASE).await.unwrap();
    assert!(
        matches!(again, Acquisition::Held { .. }),
        "the lock's hash was kept, so it is still held: {again:?}"
    );
}
