//! S2, the vending machine, on SQLite: balance 1,000, drink 1,000, 100 concurrent purchases
//! through four connections sell exactly one drink — optimistically (versioned UPDATE), under a
//! per-key lock, and with one atomic conditional UPDATE — and a stale write loses by version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;

use tempfile::TempDir;
use tollgate_sqlite::SqliteStore;
use tollgate_sqlite::rusqlite::params;
use tollgate_sqlite::tollgate::keyed;
use tollgate_sqlite::tollgate::versioned::{self, Versioned, update_with_retry};
use tollgate_testkit::release_together;

const PURCHASES: usize = 100;
const PRICE: i64 = 1_000;

/// A wallet (id 1, balance 1,000, version 0) and four connections to its database.
async fn wallet_db() -> (TempDir, Vec<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vending.db");
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(SqliteStore::open(&path).await.unwrap());
    }
    let schema = "CREATE TABLE wallets (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, \
                  version INTEGER NOT NULL); INSERT INTO wallets VALUES (1, 1000, 0);";
    conns[0].call(|c| c.execute_batch(schema)).await.unwrap();
    (dir, conns)
}

async fn balance(db: &SqliteStore) -> Versioned<i64> {
    db.call(|c| {
        c.query_row(
            "SELECT balance, version FROM wallets WHERE id = 1",
            [],
            |r| {
                Ok(Versioned {
                    value: r.get(0)?,
                    version: r.get(1)?,
                })
            },
        )
    })
    .await
    .unwrap()
}

/// Releases `PURCHASES` purchases at once, purchase `i` on connection `i % 4`; returns how
/// many succeeded.
async fn race<F, Fut>(conns: &[SqliteStore], purchase: F) -> usize
where
    F: Fn(SqliteStore) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let sold = release_together(PURCHASES, |i| purchase(conns[i % 4].clone())).await;
    sold.into_iter().filter(|sold| *sold).count()
}

#[derive(Debug)]
enum Refused {
    InsufficientFunds,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_sqlite_optimistic_versioned_update_sells_one_drink() {
    let (_dir, conns) = wallet_db().await;
    let sold = race(&conns, |db| async move {
        let outcome = update_with_retry(
            PURCHASES as u32,
            || async { Ok(balance(&db).await) },
            |balance: &i64| match balance - PRICE {
                left if left >= 0 => Ok(left),
                _ => Err(Refused::InsufficientFunds),
            },
            |version, left| {
                let db = db.clone();
                async move {
                    let sql = "UPDATE wallets SET balance = ?1, version = version + 1 \
                               WHERE id = 1 AND version = ?2";
                    let changed = db.call(move |c| c.execute(sql, params![left, version]));
                    Ok(changed.await.unwrap() == 1)
                }
            },
        )
        .await;
        match outcome {
            Ok(_) => true,
            Err(versioned::Error::Failed(Refused::InsufficientFunds)) => false,
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .await;
    assert_eq!(sold, 1);
    let after = balance(&conns[0]).await;
    assert_eq!((after.value, after.version), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_sqlite_pessimistic_keyed_lock_sells_one_drink() {
    let (_dir, conns) = wallet_db().await;
    let locks = keyed::Mutex::new();
    let sold = race(&conns, |db| {
        let locks = locks.clone();
        async move {
            let _wallet = locks.lock(1_i64).await;
            // GET, validate, UPDATE without any condition: the lock alone orders them.
            let seen = balance(&db).await.value;
            if seen < PRICE {
                return false;
            }
            let sql = "UPDATE wallets SET balance = ?1, version = version + 1 WHERE id = 1";
            db.call(move |c| c.execute(sql, params![seen - PRICE]))
                .await
                .unwrap();
            true
        }
    })
    .await;
    assert_eq!(sold, 1);
    assert_eq!(balance(&conns[0]).await.value, 0);
    assert_eq!(locks.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_sqlite_single_atomic_conditional_update_sells_one_drink() {
    let (_dir, conns) = wallet_db().await;
    let sold = race(&conns, |db| async move {
        let sql = "UPDATE wallets SET balance = balance - ?1, version = version + 1 \
                   WHERE id = 1 AND balance >= ?1";
        let changed = db.call(move |c| c.execute(sql, params![PRICE])).await;
        changed.unwrap() == 1
    })
    .await;
    assert_eq!(sold, 1);
    let after = balance(&conns[0]).await;
    assert_eq!((after.value, after.version), (0, 1));
}

#[tokio::test]
async fn s2_sqlite_stale_write_arriving_after_a_newer_one_is_rejected_by_version() {
    let (_dir, conns) = wallet_db().await;
    let old = balance(&conns[0]).await; // "set balance to 1,000" computed at version 0...
    let sql = "UPDATE wallets SET balance = ?1, version = version + 1 \
               WHERE id = 1 AND version = ?2";
    let newer = conns[1].call(move |c| c.execute(sql, params![0, 0])).await;
    assert_eq!(newer.unwrap(), 1); // ..."set to 0" lands first
    let stale = conns[2].call(move |c| c.execute(sql, params![1_000, old.version]));
    assert_eq!(stale.await.unwrap(), 0, "the stale write changes nothing");
    let after = balance(&conns[0]).await;
    assert_eq!((after.value, after.version), (0, 1));
}
