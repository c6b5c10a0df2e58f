//! Faults: the server SIGKILLed during a claim, during the work and at the completion,
//! paused with SIGSTOP, refusing connections at start; a holder process SIGKILLed. Every
//! failure is a typed `StoreError` within the store's timeout (never a panic, never a hang),
//! and a dead holder is taken over with fence + 1.
//!
//! The holder process is this test binary run again with `HOLDER_URL` set, selecting the
//! ignored `holder_process` test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_redis::tollgate::once::{
    ClaimOutcome, ClaimRequest, Fence, Fingerprint, Key, OnExpired, Owner, Settle, Store, Token,
};
use tollgate_redis::tollgate::store::{StoreError, StoreErrorKind};
use tollgate_redis::{Durability, RedisStore};
use tollgate_testkit::server::{AppendFsync, RedisOptions, RedisServer};

const TIMEOUT: Duration = Duration::from_millis(500);
/// What a failing call may take beyond the timeout (scheduling on a loaded machine).
const SLACK: Duration = Duration::from_millis(1_500);
const HOLDER_URL: &str = "TOLLGATE_REDIS_HOLDER_URL";
const HOLDER_LEASE: Duration = Duration::from_millis(300);

fn key() -> Key {
    Key::new("faults", "k")
}

fn request(lease: Duration) -> ClaimRequest {
    ClaimRequest {
        key: key(),
        fingerprint: Fingerprint::new("fp"),
        owner: Owner::random(),
        lease,
        on_expired: OnExpired::TakeOver,
        waiting_for: None,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn start(options: RedisOptions) -> RedisServer {
    blocking(move || options.start().unwrap_or_else(|e| panic!("{e}"))).await
}

async fn store(url: String) -> RedisStore {
    RedisStore::builder(url)
        .durability(Durability::Unchecked)
        .timeout(TIMEOUT)
        .connect()
        .await
        .unwrap()
}

/// Runs `op`, asserting it fails with one of `kinds` within the timeout plus slack.
async fn fails_in_time<T: std::fmt::Debug>(
    kinds: &[StoreErrorKind],
    op: impl std::future::Future<Output = Result<T, StoreError>>,
) -> StoreError {
    let started = Instant::now();
    let e = op.await.expect_err("the call should fail");
    assert!(
        started.elapsed() < TIMEOUT + SLACK,
        "took {:?}",
        started.elapsed()
    );
    assert!(kinds.contains(&e.kind()), "unexpected kind: {e}");
    e
}

/// Retries `op` while it fails transiently, for at most 10 s.
async fn until_ok<T, Fut>(mut op: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) if e.kind().is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("still failing: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_at_start_is_unavailable_within_the_timeout() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // released at once: nothing listens there
    let url = format!("redis://127.0.0.1:{port}");
    let connect = RedisStore::builder(url).timeout(TIMEOUT).connect();
    let e = fails_in_time(&[StoreErrorKind::Unavailable], connect).await;
    assert!(e.kind().is_transient());
}

/// A record key holding something else (a hash, as earlier tollgate-redis versions wrote, or
/// a string that is not a record): every operation fails `Corrupt`, naming the key, and
/// leaves it as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_key_holding_foreign_data_is_corrupt_on_every_operation_and_left_alone() {
    let server = start(RedisOptions::new()).await;
    let store = store(server.url()).await;
    let record = "tollgate:once:{6:faultsk}";
    let client = tollgate_redis::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = tollgate_redis::redis::cmd("HSET")
        .arg(record)
        .arg("st")
        .arg("c")
        .query_async(&mut conn)
        .await
        .unwrap();
    let token = Token {
        owner: Owner(7),
        fence: Fence(1),
    };
    let corrupt = [StoreErrorKind::Corrupt];
    let claim = fails_in_time(&corrupt, store.claim(request(Duration::from_secs(5)))).await;
    assert!(claim.to_string().contains(record), "{claim}");
    let hour = Duration::from_secs(3600);
    fails_in_time(&corrupt, store.complete(&key(), token, b"r".to_vec(), hour)).await;
    fails_in_time(&corrupt, store.renew(&key(), token, hour)).await;
    fails_in_time(&corrupt, store.read(&key())).await;
    fails_in_time(&corrupt, store.purge()).await;
    let kind: String = tollgate_redis::redis::cmd("TYPE")
        .arg(record)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kind, "hash");
    let () = tollgate_redis::redis::cmd("SET")
        .arg(record)
        .arg("not a record")
        .query_async(&mut conn)
        .await
        .unwrap();
    let claim = fails_in_time(&corrupt, store.claim(request(Duration::from_secs(5)))).await;
    assert!(claim.to_string().contains("does not decode"), "{claim}");
    fails_in_time(&corrupt, store.read(&key())).await;
    let value: String = tollgate_redis::redis::cmd("GET")
        .arg(record)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "not a record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_times_out_each_call_and_serves_again_once_resumed() {
    let mut server = start(RedisOptions::new()).await;
    let store = store(server.url()).await;
    server = blocking(move || {
        server.pause().unwrap();
        server
    })
    .await;
    let timed_out = [StoreErrorKind::TimedOut];
    fails_in_time(&timed_out, store.claim(request(Duration::from_secs(30)))).await;
    fails_in_time(&timed_out, store.read(&key())).await;
    server = blocking(move || {
        server.resume().unwrap();
        server
    })
    .await;
    // The timed-out claim may have taken effect once the server ran again: both answers are
    // the store's truth, and exactly one claim holds the key.
    let outcome = until_ok(|| store.claim(request(Duration::from_secs(30)))).await;
    let record = store.read(&key()).await.unwrap().unwrap();
    match outcome {
        ClaimOutcome::Acquired { token, .. } => assert_eq!(record.holder(), Some(token)),
        ClaimOutcome::InProgress { holder, .. } => assert_eq!(record.holder(), Some(holder)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(record.fence, Fence(1));
    drop(server);
}

/// The bytes the server's end of its established connections on 127.0.0.1:`port` received
/// and the server has not read yet (the `rx_queue` column of `/proc/net/tcp`).
fn unread_by_the_server(port: u16) -> u64 {
    let port = format!("{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // sl local_address rem_address st tx_queue:rx_queue ...
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields[1].rsplit_once(':').unwrap().1;
            let established = fields[3] == "01";
            (local_port == port && established).then(|| {
                let rx_queue = fields[4].split_once(':').unwrap().1;
                u64::from_str_radix(rx_queue, 16).unwrap()
            })
        })
        .sum()
}

/// Waits, with a deadline, until a request sits unread in the (paused) server's socket: a
/// call is on the wire and reached the server.
async fn on_the_wire(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while unread_by_the_server(port) == 0 {
        assert!(
            Instant::now() < deadline,
            "the call never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_a_claim_fails_the_claim_in_time() {
    let mut server = start(RedisOptions::new()).await;
    let port = server.port();
    // A timeout far beyond the kill: a claim answered within `TIMEOUT` of the kill was failed
    // by the kill (the connection reset), not by its own timeout.
    let long = TIMEOUT * 20;
    let store = RedisStore::builder(server.url())
        .durability(Durability::Unchecked)
        .timeout(long)
        .connect()
        .await
        .unwrap();
    server = blocking(move || {
        server.pause().unwrap(); // the claim is sent, and hangs until the kill
        server
    })
    .await;
    assert_eq!(unread_by_the_server(port), 0, "nothing is pending yet");
    let claim = tokio::spawn({
        let store = store.clone();
        async move { store.claim(request(Duration::from_secs(30))).await }
    });
    on_the_wire(port).await;
    let killed = Instant::now();
    server = blocking(move || {
        server.kill().unwrap();
        server
    })
    .await;
    let e = claim.await.unwrap().expect_err("the claim should fail");
    assert_eq!(e.kind(), StoreErrorKind::Unavailable, "{e}");
    assert!(
        killed.elapsed() < TIMEOUT + SLACK,
        "answered {:?} after the kill: at once, not at its timeout",
        killed.elapsed()
    );
    // The next call finds the server gone: the reconnection is refused.
    let started = Instant::now();
    let e = store.read(&key()).await.expect_err("the read should fail");
    assert_eq!(e.kind(), StoreErrorKind::Unavailable, "{e}");
    assert!(started.elapsed() < long, "took {:?}", started.elapsed());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_the_work_fails_the_completion_then_accepts_it_after_restart() {
    let server = start(RedisOptions::new().append_only(AppendFsync::Always)).await;
    let store = store(server.url()).await;
    let ClaimOutcome::Acquired { token, .. } =
        store.claim(request(Duration::from_secs(30))).await.unwrap()
    else {
        panic!("a fresh key is acquired");
    };
    let mut server = blocking(move || {
        let mut server = server;
        server.kill().unwrap();
        server
    })
    .await;
    let retention = Duration::from_secs(60);
    let either = [StoreErrorKind::Unavailable, StoreErrorKind::TimedOut];
    let k = key();
    let complete = store.complete(&k, token, b"paid".to_vec(), retention);
    fails_in_time(&either, complete).await;
    server = blocking(move || {
        server.restart().unwrap();
        server
    })
    .await;
    let settled = until_ok(|| store.complete(&k, token, b"paid".to_vec(), retention)).await;
    assert_eq!(
        settled,
        Settle::Accepted,
        "the claim survived the crash (fsync always)"
    );
    let replay = store.claim(request(Duration::from_secs(30))).await.unwrap();
    assert_eq!(
        replay,
        ClaimOutcome::Completed {
            result: b"paid".to_vec()
        }
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_process_killed_is_taken_over_with_the_next_fence() {
    let server = start(RedisOptions::new()).await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["holder_process", "--exact", "--ignored", "--nocapture"])
        .env(HOLDER_URL, server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map(Result::unwrap)
            .find_map(|l| l.strip_prefix("HOLDING ").map(str::to_owned))
            .expect("the holder never claimed")
    })
    .await;
    let mut parts = line.split_whitespace().map(|p| p.parse::<u128>().unwrap());
    let dead = Token {
        owner: Owner(parts.next().unwrap()),
        fence: Fence(u64::try_from(parts.next().unwrap()).unwrap()),
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = store(server.url()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let (token, took_over) = loop {
        match store.claim(request(Duration::from_secs(30))).await.unwrap() {
            ClaimOutcome::Acquired { token, took_over } => break (token, took_over),
            ClaimOutcome::InProgress { holder, .. } if Instant::now() < deadline => {
                assert_eq!(holder, dead);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        (token.fence, took_over),
        (Fence(dead.fence.0 + 1), Some(dead))
    );
    let k = key();
    let late = store.complete(&k, dead, b"late".to_vec(), Duration::from_secs(60));
    assert_eq!(
        late.await.unwrap(),
        Settle::Fenced,
        "the dead holder's token is fenced"
    );
}

/// The holder process: claims the key on `HOLDER_URL`, prints its token, and waits to be
/// killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_holder_process_killed_is_taken_over_with_the_next_fence"]
async fn holder_process() {
    let url = std::env::var(HOLDER_URL).unwrap_or_else(|_| {
        panic!(
            "run only by a_holder_process_killed_is_taken_over_with_the_next_fence, \
             which sets {HOLDER_URL}"
        )
    });
    let store = store(url).await;
    let ClaimOutcome::Acquired { token, .. } = store.claim(request(HOLDER_LEASE)).await.unwrap()
    else {
        panic!("the holder could not claim");
    };
    println!("HOLDING {} {}", token.owner.0, token.fence.0);
    std::future::pending::<()>().await;
}
