//! S2 on PostgreSQL: the optimistic compare-and-set of a versioned row, and the pessimistic
//! transaction-level lock, each under racing buyers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use tollgate_postgres::PostgresStore;
use tollgate_postgres::tollgate::store::{Key, StoreError, StoreErrorKind};
use tollgate_postgres::tollgate::versioned::{Error, update_with_retry};
use tollgate_testkit::release_together;

async fn store() -> PostgresStore {
    let server = support::shared_server().await;
    support::store(server, &support::fresh_schema(), None).await
}

fn insufficient() -> StoreError {
    StoreError::msg(StoreErrorKind::Rejected, "insufficient funds")
}

/// 16 buyers of a 10-unit item race on a balance of 100: exactly 10 are served, each from the
/// balance it saw, and the version counts the 10 writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_buyers_never_spend_the_same_balance_twice_with_compare_and_set() {
    let store = store().await;
    let wallets = Arc::new(store.versioned());
    let wallet = Key::new("wallet", "user-1");
    assert!(wallets.insert(&wallet, &100_u64).await.unwrap());
    assert!(
        !wallets.insert(&wallet, &5_u64).await.unwrap(),
        "inserted once"
    );
    let bought = release_together(16, |_| {
        let (wallets, wallet) = (Arc::clone(&wallets), wallet.clone());
        async move {
            update_with_retry(
                1_000,
                || wallets.read::<u64>(&wallet),
                |balance: &u64| balance.checked_sub(10).ok_or_else(insufficient),
                |version, balance| wallets.compare_and_set(&wallet, version, balance),
            )
            .await
        }
    })
    .await;
    let served = bought.iter().filter(|b| b.is_ok()).count();
    let refused = bought
        .iter()
        .filter(|b| matches!(b, Err(Error::Failed(e)) if e.kind() == StoreErrorKind::Rejected))
        .count();
    assert_eq!((served, refused), (10, 6), "{bought:?}");
    let now = wallets.read::<u64>(&wallet).await.unwrap();
    assert_eq!((now.value, now.version), (0, 10));
    assert!(
        !wallets.compare_and_set(&wallet, 9, 50_u64).await.unwrap(),
        "stale version"
    );
}

/// 16 tasks increment a counter with a plain read-then-write inside `locked`: the lock
/// serialises them (16, not fewer), and no advisory lock outlives its transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_transaction_lock_serialises_read_modify_write_and_leaves_no_session_lock() {
    let store = store().await;
    let table = format!("{}.counter", store.schema());
    let setup = format!("CREATE TABLE {table} (n bigint NOT NULL); INSERT INTO {table} VALUES (0)");
    store
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&setup)
        .await
        .unwrap();
    let key = Key::new("counter", "1");
    let done = release_together(16, |_| {
        let (store, key, table) = (store.clone(), key.clone(), table.clone());
        async move {
            store
                .locked(&key, move |tx| {
                    Box::pin(async move {
                        let read = format!("SELECT n FROM {table}");
                        let n: i64 = tx.query_one(&read, &[]).await?.get(0);
                        tokio::task::yield_now().await; // widen the read-modify-write window
                        let write = format!("UPDATE {table} SET n = $1");
                        tx.execute(&write, &[&(n + 1)]).await?;
                        Ok(n + 1)
                    })
                })
                .await
        }
    })
    .await;
    let mut seen: Vec<i64> = done.into_iter().map(Result::unwrap).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=16).collect::<Vec<_>>(),
        "each saw the previous write"
    );
    let client = store.pool().get().await.unwrap();
    let locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 \
                 AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)";
    let encoded = key.encode();
    let held: i64 = client.query_one(locks, &[&encoded]).await.unwrap().get(0);
    assert_eq!(held, 0, "no advisory lock outlives its transaction");
}
