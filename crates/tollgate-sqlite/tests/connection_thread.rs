//! The connection thread outlives a panicking job: the panic reaches its own caller as an error,
//! the transaction it left open is rolled back, and every other caller of the store is served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tokio::sync::Barrier;
use tollgate_sqlite::SqliteStore;
use tollgate_sqlite::tollgate::store::StoreErrorKind;

const CALLERS: usize = 400;
const PANICKING: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_fails_alone_and_the_store_serves_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("app.db")).await.unwrap();
    store
        .call(|conn| conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)"))
        .await
        .unwrap();

    let gate = Arc::new(Barrier::new(CALLERS));
    let callers = (0..CALLERS).map(|n| {
        let (store, gate) = (store.clone(), Arc::clone(&gate));
        tokio::spawn(async move {
            gate.wait().await;
            store
                .call(move |conn| {
                    // Every tenth job begins a transaction with plain SQL, writes, and panics
                    // inside it; the rest insert their number and commit.
                    if n % (CALLERS / PANICKING) == 0 {
                        conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (-1)")?;
                        panic!("job {n} broke");
                    }
                    conn.execute("INSERT INTO t VALUES (?1)", [n as i64])
                })
                .await
        })
    });
    let mut panicked = 0;
    for caller in callers.collect::<Vec<_>>() {
        match caller.await.unwrap() {
            Ok(inserted) => assert_eq!(inserted, 1),
            Err(e) => {
                assert_eq!(e.kind(), StoreErrorKind::Other);
                assert!(e.to_string().contains("broke"), "{e}");
                panicked += 1;
            }
        }
    }
    assert_eq!(panicked, PANICKING);

    let (rows, negative, autocommit) = store
        .call(|conn| {
            let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
            let negative: i64 =
                conn.query_row("SELECT count(*) FROM t WHERE n < 0", [], |r| r.get(0))?;
            Ok((rows, negative, conn.is_autocommit()))
        })
        .await
        .unwrap();
    assert_eq!(
        rows,
        (CALLERS - PANICKING) as i64,
        "every other job committed"
    );
    assert_eq!(negative, 0, "the panicking jobs' writes were rolled back");
    assert!(autocommit, "no transaction is left open");
}

#[tokio::test]
async fn a_panic_with_a_formatted_message_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("app.db")).await.unwrap();
    let code = 7;
    let err = store
        .call(move |_conn| -> tollgate_sqlite::rusqlite::Result<()> { panic!("code {code}") })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Other);
    assert!(err.to_string().contains("code 7"), "{err}");
    let one: i64 = store
        .call(|conn| conn.query_row("SELECT 1", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(one, 1);
}
