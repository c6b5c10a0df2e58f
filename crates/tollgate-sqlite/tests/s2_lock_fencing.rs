//! S2 across processes, on SQLite: a holder of a leased lock is paused past its lease, the next
//! holder buys a drink, and the paused one wakes and writes its stale balance.
//!
//! With [`fenced_update`] the resource rejects the stale write (0 rows) and the balance stays
//! right; with a plain `UPDATE` — what an unfenced lock (aioredlock, redsync) leaves you with —
//! the purchase is lost. Both run the same schedule; the naive test asserts the lost update, so
//! the fenced test's rejection is shown to be what saves the balance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tempfile::TempDir;
use tollgate_sqlite::rusqlite::{Connection, params};
use tollgate_sqlite::tollgate::clock::{Clock, ManualClock};
use tollgate_sqlite::tollgate::lock::{LockGuard, Locks};
use tollgate_sqlite::tollgate::store::{Fence, Key, LostReason, Timeline};
use tollgate_sqlite::{SqliteLockStore, SqliteStore, fenced_update};

/// A's lease: 3 s of real time, so A's first renewal (1 s in) comes long after B took over.
const LEASE: Duration = Duration::from_secs(3);
const DEPOSIT: i64 = 500;
const PRICE: i64 = 1_000;

/// Writes `balance` to wallet 1 as the holder of `fence`; whether the row changed.
type Write = fn(&Connection, Fence, i64) -> bool;

fn fenced(conn: &Connection, fence: Fence, balance: i64) -> bool {
    fenced_update(
        conn,
        "wallets",
        "id",
        &1,
        "fence",
        fence,
        &[("balance", &balance)],
    )
    .unwrap()
}

fn naive(conn: &Connection, _: Fence, balance: i64) -> bool {
    let sql = "UPDATE wallets SET balance = ?1 WHERE id = 1";
    conn.execute(sql, params![balance]).unwrap() == 1
}

/// One process: its own connection (lock store and wallet) on the shared file and clock.
struct Process {
    db: SqliteStore,
    locks: Locks<SqliteLockStore>,
}

async fn process(dir: &TempDir, timeline: &Timeline) -> Process {
    let db = SqliteStore::builder(dir.path().join("vending.db"))
        .timeline(timeline.clone())
        .open()
        .await
        .unwrap();
    let locks = Locks::new(SqliteLockStore::new(db.clone()).await.unwrap());
    Process { db, locks }
}

impl Process {
    async fn balance(&self) -> i64 {
        let sql = "SELECT balance FROM wallets WHERE id = 1";
        self.db
            .call(move |c| c.query_row(sql, [], |r| r.get(0)))
            .await
            .unwrap()
    }

    async fn write(&self, write: Write, fence: Fence, balance: i64) -> bool {
        self.db
            .call(move |c| Ok(write(c, fence, balance)))
            .await
            .unwrap()
    }

    async fn lock(&self) -> LockGuard<SqliteLockStore> {
        let guard = self.locks.try_acquire(Key::new("wallet", "1"), LEASE).await;
        guard.unwrap().expect("the wallet's lock is free")
    }
}

/// The schedule: A locks and reads 1,000 to deposit 500, then is paused past its lease (the
/// store's clock moves on, A's renewal loop does not run); B locks with a higher fence and
/// buys a drink (1,000 → 0); A wakes and writes its stale 1,500. Returns whether A's write
/// applied, the final balance, and why A was told it lost the lock.
async fn paused_holder_writes_late(write: Write) -> (bool, i64, LostReason) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let timeline = Timeline::from_clock(Clock::Manual(clock.clone()));
    let (a, b) = (
        process(&dir, &timeline).await,
        process(&dir, &timeline).await,
    );
    let schema = "CREATE TABLE wallets (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, \
                  fence INTEGER NOT NULL DEFAULT 0); INSERT INTO wallets (id, balance) VALUES (1, 1000);";
    a.db.call(move |c| c.execute_batch(schema)).await.unwrap();

    let a_lock = a.lock().await;
    assert_eq!(
        a_lock.fence(),
        Fence(1),
        "a fresh database: the first fence"
    );
    let a_read = a.balance().await;
    clock.advance(LEASE); // A is paused: its lease runs out on the store's clock

    let b_lock = b.lock().await;
    assert_eq!(b_lock.fence(), Fence(2), "B takes over with the next fence");
    let b_read = b.balance().await;
    assert!(b.write(write, b_lock.fence(), b_read - PRICE).await);

    let a_applied = a.write(write, a_lock.fence(), a_read + DEPOSIT).await; // A wakes up
    let reason = a_lock.lost().wait().await;
    b_lock.release().await.unwrap();
    (a_applied, b.balance().await, reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_paused_holder_stale_write_is_rejected_by_the_fence() {
    let (a_applied, balance, reason) = paused_holder_writes_late(fenced).await;
    assert!(!a_applied, "the stale holder's write must change 0 rows");
    assert_eq!(balance, 0, "the row keeps B's purchase");
    assert_eq!(reason, LostReason::Fenced, "A is told it lost the lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_naive_unfenced_write_of_a_paused_holder_loses_the_update() {
    let (a_applied, balance, _) = paused_holder_writes_late(naive).await;
    assert!(a_applied);
    assert_eq!(
        balance,
        1_000 + DEPOSIT,
        "B's purchase is lost: the drink was free"
    );
}
