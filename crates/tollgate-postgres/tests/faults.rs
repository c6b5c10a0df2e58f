//! Faults, each with exact outcomes, on a throw-away server of its own per test (they kill,
//! pause and restart it) and on the server's own clock:
//!
//! - the server SIGKILLed during a claim, during the work, during the completion: the caller
//!   gets a [`StoreError`] of kind unavailable at once (no panic, no hang); after a restart no
//!   key is executed twice — it is in progress, never silently re-run;
//! - the server paused (SIGSTOP): calls time out with a clear error, and work again after
//!   SIGCONT;
//! - a holder *process* SIGKILLed: the next claimant takes over with fence + 1 once the lease
//!   ran out on the server's clock, and the dead holder's token is rejected;
//! - the pool exhausted: a bounded wait, then an error that says so.
//!
//! The child processes are this test binary re-run with `CHILD` set, selecting the ignored
//! `child_process` test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tollgate_postgres::tollgate::once::{
    ClaimOutcome, ClaimRequest, Error, Failure, Fence, Fingerprint, Key, OnExpired, Once, Output,
    Owner, RecordState, Settle, Store, StoreError, Token,
};
use tollgate_postgres::tollgate::store::StoreErrorKind;
use tollgate_postgres::{InTransaction, PostgresStore};
use tollgate_testkit::server::PostgresServer;

const CHILD: &str = "TOLLGATE_PG_CHILD_URL";
/// The bound on every store call in these tests.
const TIMEOUT: Duration = Duration::from_secs(3);
const LEASE: Duration = Duration::from_millis(500);

fn key() -> Key {
    Key::new("faults", "user-1/2026-11-21")
}

fn request(key: Key, owner: Owner, lease: Duration) -> ClaimRequest {
    ClaimRequest {
        key,
        fingerprint: Fingerprint::new("a"),
        owner,
        lease,
        on_expired: OnExpired::TakeOver,
        waiting_for: None,
    }
}

/// A server of the test's own.
async fn own_server() -> PostgresServer {
    tokio::task::spawn_blocking(|| support::options().start().unwrap())
        .await
        .unwrap()
}

/// A store with a pool of `size` connections, calls bounded by [`TIMEOUT`].
async fn store(server: &PostgresServer, size: usize) -> PostgresStore {
    let pool = tollgate_postgres::pool(support::config(server), size, TIMEOUT).unwrap();
    PostgresStore::builder(pool)
        .timeout(TIMEOUT)
        .open()
        .await
        .unwrap()
}

/// Runs a blocking fault injection without stalling the runtime's other tasks.
fn inject<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Waits, with a deadline, until every connection of the store's pool is taken: a call is
/// on the wire.
async fn on_the_wire(store: &PostgresStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.pool().status().available > 0 {
        assert!(
            Instant::now() < deadline,
            "the call never took a connection"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn assert_unavailable<T: std::fmt::Debug>(outcome: Result<T, StoreError>, started: Instant) {
    let e = outcome.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Unavailable, "{e}");
    assert!(
        started.elapsed() < TIMEOUT,
        "answered at once, not at the timeout"
    );
}

fn once_error_kind<T: std::fmt::Debug>(outcome: Result<T, Error<String>>) -> StoreErrorKind {
    match outcome {
        Err(Error::Store(e)) => e.kind(),
        other => panic!("expected a store error, got {other:?}"),
    }
}

/// After a restart, the key whose completion was lost is still held by fence 1 and a second
/// call is turned away: nothing runs it again.
async fn after_restart_nothing_reruns(server: &mut PostgresServer, ran: &Arc<AtomicUsize>) {
    inject(|| server.restart()).unwrap();
    let store = store(server, 2).await;
    let record = store.read(&key()).await.unwrap().unwrap();
    assert!(
        matches!(record.state, RecordState::InProgress { .. }),
        "{record:?}"
    );
    assert_eq!(record.fence, Fence(1));
    let ran2 = Arc::clone(ran);
    let once = Once::new(store);
    let again = once.run(key(), Fingerprint::new("a"), move || async move {
        ran2.fetch_add(1, Ordering::SeqCst);
        Ok::<_, Failure<String>>("again".to_string())
    });
    assert_eq!(again.await, Err(Error::Conflict));
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the work ran once");
}

/// A call of [`key`] whose work counts its runs and waits, once started, until told to finish;
/// returns once the work has started.
async fn held_call(
    once: &Once<PostgresStore>,
) -> (
    JoinHandle<Result<Output<String>, Error<String>>>,
    Arc<AtomicUsize>,
    oneshot::Sender<()>,
) {
    let ran = Arc::new(AtomicUsize::new(0));
    let (entered, has_entered) = oneshot::channel();
    let (finish, finished) = oneshot::channel::<()>();
    let (once, counted) = (once.clone(), Arc::clone(&ran));
    let work = move || async move {
        counted.fetch_add(1, Ordering::SeqCst);
        let _ = entered.send(());
        let _ = finished.await;
        Ok::<_, Failure<String>>("paid".to_string())
    };
    let call = tokio::spawn(async move { once.run(key(), Fingerprint::new("a"), work).await });
    has_entered.await.unwrap();
    (call, ran, finish)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_a_claim_answers_unavailable_and_nothing_is_claimed() {
    let mut server = own_server().await;
    let store = store(&server, 1).await;
    let warm = store.claim(request(Key::new("faults", "warm"), Owner(1), LEASE));
    assert!(matches!(warm.await.unwrap(), ClaimOutcome::Acquired { .. }));
    inject(|| server.pause()).unwrap();
    let claim = tokio::spawn({
        let store = store.clone();
        async move {
            let started = Instant::now();
            (store.claim(request(key(), Owner(2), LEASE)).await, started)
        }
    });
    on_the_wire(&store).await;
    inject(|| server.kill()).unwrap();
    let (outcome, started) = claim.await.unwrap();
    assert_unavailable(outcome, started);
    inject(|| server.restart()).unwrap();
    let store = self::store(&server, 1).await;
    assert_eq!(
        store.read(&key()).await.unwrap(),
        None,
        "the claim never committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_the_work_fails_the_call_and_the_key_is_not_rerun() {
    let mut server = own_server().await;
    let once = Once::new(store(&server, 2).await);
    let (call, ran, finish) = held_call(&once).await;
    inject(|| server.kill()).unwrap();
    let started = Instant::now();
    finish.send(()).unwrap();
    let outcome = call.await.unwrap();
    assert_eq!(once_error_kind(outcome), StoreErrorKind::Unavailable);
    assert!(started.elapsed() < TIMEOUT);
    after_restart_nothing_reruns(&mut server, &ran).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_during_the_completion_fails_the_call_and_the_key_is_not_rerun() {
    let mut server = own_server().await;
    let store = store(&server, 1).await;
    let once = Once::new(store.clone());
    let (call, ran, finish) = held_call(&once).await;
    inject(|| server.pause()).unwrap();
    finish.send(()).unwrap();
    on_the_wire(&store).await; // the completion holds the only connection: it is sent
    let started = Instant::now();
    inject(|| server.kill()).unwrap();
    let outcome = call.await.unwrap();
    assert_eq!(once_error_kind(outcome), StoreErrorKind::Unavailable);
    assert!(started.elapsed() < TIMEOUT);
    after_restart_nothing_reruns(&mut server, &ran).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_inside_the_completion_transaction_stores_neither_report_nor_result() {
    let mut server = own_server().await;
    let store = store(&server, 2).await;
    let create = "CREATE TABLE reports (day text PRIMARY KEY, summary text)";
    store
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(create)
        .await
        .unwrap();
    let once = Once::new(store.clone());
    let ran = Arc::new(AtomicUsize::new(0));
    let (inside, is_inside) = oneshot::channel();
    let (finish, finished) = oneshot::channel::<()>();
    let call = tokio::spawn({
        let ran = Arc::clone(&ran);
        async move {
            let work = move || async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Failure<String>>(InTransaction::new(move |tx| {
                    Box::pin(async move {
                        let _ = inside.send(()); // the record is locked, the transaction open
                        let _ = finished.await;
                        let insert = "INSERT INTO reports VALUES ('2026-11-21', 'lost')";
                        tx.execute(insert, &[]).await?;
                        Ok(Ok("paid".to_string()))
                    })
                }))
            };
            once.call(key(), Fingerprint::new("a"))
                .run_committed(work)
                .await
        }
    });
    is_inside.await.unwrap();
    inject(|| server.kill()).unwrap();
    let started = Instant::now();
    finish.send(()).unwrap();
    let outcome = call.await.unwrap();
    assert_eq!(once_error_kind(outcome), StoreErrorKind::Unavailable);
    assert!(started.elapsed() < TIMEOUT);
    after_restart_nothing_reruns(&mut server, &ran).await;
    let store = self::store(&server, 1).await;
    let client = store.pool().get().await.unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM reports", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "the report rolled back with the completion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_times_out_with_a_clear_error_then_recovers_after_sigcont() {
    let mut server = own_server().await;
    let timeout = Duration::from_millis(500);
    let pool = tollgate_postgres::pool(support::config(&server), 2, timeout).unwrap();
    let store = PostgresStore::builder(pool)
        .timeout(timeout)
        .open()
        .await
        .unwrap();
    inject(|| server.pause()).unwrap();
    let started = Instant::now();
    let e = store
        .claim(request(key(), Owner(1), LEASE))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.kind(), StoreErrorKind::TimedOut, "{e}");
    assert!(
        e.to_string()
            .contains("did not answer a claim within 500ms"),
        "{e}"
    );
    assert!(waited >= timeout && waited < timeout * 4, "{waited:?}");
    inject(|| server.resume()).unwrap();
    let other = Key::new("faults", "after-sigcont");
    let claimed = store.claim(request(other, Owner(2), LEASE)).await.unwrap();
    let fence_one = |o: &ClaimOutcome| matches!(o, ClaimOutcome::Acquired { token, took_over: None } if token.fence == Fence(1));
    assert!(fence_one(&claimed), "{claimed:?}");
    // The timed-out claim may or may not have taken effect: the store answers either way.
    let record = store.read(&key()).await.unwrap();
    assert!(record.is_none_or(|r| r.holder()
        == Some(Token {
            owner: Owner(1),
            fence: Fence(1)
        })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_waits_boundedly_then_says_every_connection_is_in_use() {
    let server = own_server().await;
    let wait = Duration::from_millis(300);
    let pool = tollgate_postgres::pool(support::config(&server), 1, wait).unwrap();
    let store = PostgresStore::builder(pool)
        .timeout(TIMEOUT)
        .open()
        .await
        .unwrap();
    let held = store.pool().get().await.unwrap();
    let started = Instant::now();
    let e = store
        .claim(request(key(), Owner(1), LEASE))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.kind(), StoreErrorKind::Busy, "{e}");
    assert!(
        e.to_string()
            .contains("every connection of the pool is in use"),
        "{e}"
    );
    assert!(waited >= wait && waited < TIMEOUT, "{waited:?}");
    drop(held);
    let claimed = store.claim(request(key(), Owner(1), LEASE)).await.unwrap();
    assert!(matches!(claimed, ClaimOutcome::Acquired { .. }));
}

fn spawn_holder(url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The token the child printed after `TOKEN `.
fn holder_token(child: &mut Child) -> Token {
    let stdout = BufReader::new(child.stdout.as_mut().unwrap());
    let line = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with("TOKEN "));
    let line = line.expect("the holder never printed its token");
    let mut parts = line["TOKEN ".len()..].split_whitespace();
    Token {
        owner: Owner(parts.next().unwrap().parse().unwrap()),
        fence: Fence(parts.next().unwrap().parse().unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_process_is_taken_over_with_fence_plus_one_and_its_token_rejected() {
    let server = own_server().await;
    let store = store(&server, 2).await;
    let url = server.url();
    let (mut child, dead) = inject(|| {
        let mut child = spawn_holder(&url);
        let token = holder_token(&mut child);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        (child, token)
    });
    assert_eq!(dead.fence, Fence(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    let taken = loop {
        match store.claim(request(key(), Owner(7), LEASE)).await.unwrap() {
            ClaimOutcome::InProgress { holder, .. } => assert_eq!(holder, dead),
            taken => break taken,
        }
        assert!(
            Instant::now() < deadline,
            "the dead holder's lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let token = Token {
        owner: Owner(7),
        fence: Fence(2),
    };
    let expected = ClaimOutcome::Acquired {
        token,
        took_over: Some(dead),
    };
    assert_eq!(taken, expected);
    assert_eq!(
        store.renew(&key(), dead, LEASE).await.unwrap(),
        Settle::Fenced
    );
    let late = store
        .complete(&key(), dead, b"\"late\"".to_vec(), LEASE)
        .await;
    assert_eq!(late.unwrap(), Settle::Fenced);
    let late = store.fail(&key(), dead, vec![], true, LEASE).await;
    assert_eq!(late.unwrap(), Settle::Fenced);
    let done = store
        .complete(&key(), token, b"\"done\"".to_vec(), LEASE)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    drop(child.stdout.take());
}

/// The holder process: claims the key with a short lease, prints its token, and hangs until
/// it is killed. Run only by the test above (`CHILD` set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by a_killed_holder_process_is_taken_over_…"]
async fn child_process() {
    let url = std::env::var(CHILD).unwrap_or_else(|_| {
        panic!(
            "run only by a_killed_holder_process_is_taken_over_with_fence_plus_one_and_its_\
             token_rejected, which sets {CHILD}"
        )
    });
    let store = PostgresStore::connect(&url).await.unwrap();
    let owner = Owner::random();
    match store.claim(request(key(), owner, LEASE)).await.unwrap() {
        ClaimOutcome::Acquired { token, .. } => {
            println!("TOKEN {} {}", token.owner.0, token.fence.0);
        }
        other => panic!("the holder did not acquire: {other:?}"),
    }
    std::future::pending::<()>().await;
}

/// Waits, with a deadline, until `store`'s listener is (or is not) connected.
async fn listening_is(store: &PostgresStore, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.wakes_waiters() != up {
        assert!(Instant::now() < deadline, "the listener never became {up}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_falls_back_to_polling_while_the_server_is_down_and_reconnects() {
    let mut server = own_server().await;
    let pool = tollgate_postgres::pool(support::config(&server), 2, TIMEOUT).unwrap();
    let store = PostgresStore::builder(pool)
        .timeout(TIMEOUT)
        .listen(support::config(&server))
        .open()
        .await
        .unwrap();
    listening_is(&store, true).await;
    inject(|| server.kill()).unwrap();
    listening_is(&store, false).await; // waiters poll with backoff meanwhile
    inject(|| server.restart()).unwrap();
    listening_is(&store, true).await;
    let claimed = store.claim(request(key(), Owner(1), LEASE)).await.unwrap();
    assert!(matches!(claimed, ClaimOutcome::Acquired { .. }));
}
