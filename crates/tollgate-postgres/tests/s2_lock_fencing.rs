//! S2 on PostgreSQL: a lock holder paused past its lease writes a stale balance.
//!
//! - naive: the lease lock ([`PgLockStore`]) with a plain `UPDATE` — what every unfenced lock
//!   leaves you with; holder A is a child process **SIGSTOPped** after reading the balance; B
//!   locks once A's lease ran out on the server's clock and buys a drink; A is resumed and
//!   writes its stale balance → the purchase is lost (the test asserts it);
//! - tollgate: the same schedule with [`fenced_update`]: A's write changes no row, the balance
//!   is right, and A's lost-lease signal fired when it woke;
//! - the server paused instead of the holder: A's renewals cannot succeed, so A is told
//!   through its lost-lease signal before its lease is over — before B can take the key.
//!
//! The child is this binary run again with `TOLLGATE_S2_URL` set (ignored test
//! `holder_process`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tokio::time::Instant;
use tollgate_postgres::deadpool_postgres::Pool;
use tollgate_postgres::tollgate::lock::{Locks, Wait};
use tollgate_postgres::tollgate::store::Fence;
use tollgate_postgres::{PgLockStore, fenced_update};
use tollgate_testkit::child::ChildTest;
use tollgate_testkit::s2_lock::{
    DEPOSIT, HOLDER_LEASE, PRICE, PausedWrite, START_BALANCE, pause_the_holder_while,
    paused_holder, told_before_the_lease_ends_while_the_store_is_paused, wallet_key,
};

const URL: &str = "TOLLGATE_S2_URL";
const SCHEMA: &str = "TOLLGATE_S2_SCHEMA";
const MODE: &str = "TOLLGATE_S2_MODE";

fn pool_of(locks: &Locks<PgLockStore>) -> Pool {
    locks.store().store().pool().clone()
}

async fn create_wallet(pool: &Pool, schema: &str) {
    let sql = format!(
        "CREATE TABLE {schema}.wallets (id bigint PRIMARY KEY, balance bigint NOT NULL, \
         fence bigint NOT NULL DEFAULT 0); INSERT INTO {schema}.wallets (id, balance) VALUES (1, {START_BALANCE});"
    );
    pool.get().await.unwrap().batch_execute(&sql).await.unwrap();
}

async fn balance(pool: Pool, schema: String) -> i64 {
    let sql = format!("SELECT balance FROM {schema}.wallets WHERE id = 1");
    let client = pool.get().await.unwrap();
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

/// Writes `balance` as the holder of `fence`: fenced, or a plain `UPDATE` (`naive`).
async fn write(pool: Pool, schema: String, naive: bool, fence: Fence, balance: i64) -> bool {
    let client = pool.get().await.unwrap();
    // The search path lets the fenced statement name the table without its schema.
    let path = format!("SET search_path TO {schema}");
    client.batch_execute(&path).await.unwrap();
    if naive {
        let sql = "UPDATE wallets SET balance = $1 WHERE id = 1";
        return client.execute(sql, &[&balance]).await.unwrap() == 1;
    }
    let set: &[(
        &str,
        &(dyn tollgate_postgres::tokio_postgres::types::ToSql + Sync),
    )] = &[("balance", &balance)];
    let written = fenced_update(&**client, "wallets", "id", &1_i64, "fence", fence, set).await;
    client.batch_execute("RESET search_path").await.unwrap();
    written.unwrap()
}

/// Runs the schedule with holder A in a child process, its write `naive` or fenced. Returns
/// what A reported and the final balance.
async fn paused_holder_schedule(naive: bool) -> (PausedWrite, i64) {
    let server = support::shared_server().await;
    let (url, schema) = (server.url(), support::fresh_schema());
    let b = support::locks(&url, &schema, support::TIMEOUT).await;
    let pool = pool_of(&b);
    create_wallet(&pool, &schema).await;
    let mode = if naive { "naive" } else { "fenced" };
    let env = [
        (URL, url),
        (SCHEMA, schema.clone()),
        (MODE, mode.to_owned()),
    ];
    let mut child = tokio::task::block_in_place(|| ChildTest::spawn("holder_process", &env));
    let next_holder = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let guard = b.acquire(wallet_key(), HOLDER_LEASE, Wait::Until(deadline));
        let guard = guard.await.unwrap();
        let read = balance(pool.clone(), schema.clone()).await;
        let bought = write(
            pool.clone(),
            schema.clone(),
            naive,
            guard.fence(),
            read - PRICE,
        );
        assert!(bought.await);
        guard.release().await.unwrap();
    };
    let a = pause_the_holder_while(&mut child, next_holder).await;
    (a, balance(pool, schema).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_naive_unfenced_write_of_a_paused_holder_loses_the_update_postgres() {
    let (a, balance) = paused_holder_schedule(true).await;
    assert!(a.applied, "nothing stops the paused holder's plain UPDATE");
    assert_eq!(
        balance,
        START_BALANCE + DEPOSIT,
        "B's purchase is lost: the drink was free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_paused_holder_stale_write_is_rejected_by_the_fence_postgres() {
    let (a, balance) = paused_holder_schedule(false).await;
    assert_eq!(a.fence, 1);
    assert!(!a.applied, "the stale holder's write must change 0 rows");
    assert_eq!(balance, START_BALANCE - PRICE, "the row keeps B's purchase");
    assert_eq!(a.lost, "Expired", "A is told it lost the lock as it wakes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_holder_is_told_before_its_lease_ends_when_the_server_is_paused_postgres() {
    let start = || support::options().start().unwrap();
    let server = tokio::task::spawn_blocking(start).await.unwrap();
    let (url, schema) = (server.url(), "tollgate".to_owned());
    let pool = pool_of(&support::locks(&url, &schema, support::TIMEOUT).await);
    create_wallet(&pool, &schema).await;
    let server = std::sync::Mutex::new(server);
    told_before_the_lease_ends_while_the_store_is_paused(
        |timeout| support::locks(&url, "tollgate", timeout),
        || server.lock().unwrap().pause().unwrap(),
        || server.lock().unwrap().resume().unwrap(),
        || balance(pool.clone(), schema.clone()),
        |fence, balance| write(pool.clone(), schema.clone(), false, fence, balance),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_update_accepts_the_holder_and_rejects_an_older_fence_postgres() {
    let server = support::shared_server().await;
    let schema = support::fresh_schema();
    let b = support::locks(&server.url(), &schema, support::TIMEOUT).await;
    let pool = pool_of(&b);
    create_wallet(&pool, &schema).await;
    let write = |fence, value| write(pool.clone(), schema.clone(), false, Fence(fence), value);
    assert!(write(2, 0).await, "a row at fence 0 takes any");
    assert!(write(2, 10).await, "the holder writes again");
    assert!(!write(1, 1_500).await, "an older fence changes no row");
    let client = pool.get().await.unwrap();
    let nothing = fenced_update(&**client, "wallets", "id", &1_i64, "fence", Fence(3), &[]);
    assert!(matches!(
        nothing.await,
        Err(tollgate_postgres::FencedUpdateError::Statement(_))
    ));
    assert_eq!(balance(pool, schema).await, 10);
}

/// Holder A: locks the wallet, reads, waits to be told to write (it is paused meanwhile),
/// writes its stale balance. Run only by the schedule above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the s2_* tests"]
async fn holder_process() {
    let (Ok(url), Ok(schema), Ok(mode)) = (
        std::env::var(URL),
        std::env::var(SCHEMA),
        std::env::var(MODE),
    ) else {
        panic!("run only by the s2_* tests of this file, which set {URL}, {SCHEMA} and {MODE}");
    };
    let locks = support::locks(&url, &schema, support::TIMEOUT).await;
    let pool = pool_of(&locks);
    let guard = locks.try_acquire(wallet_key(), HOLDER_LEASE).await.unwrap();
    let guard = guard.expect("the wallet's lock is free");
    let fence = guard.fence();
    let read = balance(pool.clone(), schema.clone());
    let naive = mode == "naive";
    let write = |b| write(pool.clone(), schema.clone(), naive, fence, b);
    paused_holder(fence, read, write, Some(guard.lost())).await;
}
