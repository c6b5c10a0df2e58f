//! A lock holder *process* SIGKILLed on SQLite: the key stays held until the dead holder's lease
//! ends on the database host's clock (no destructor, no release, no renewal ran), then the next
//! holder, in another process, acquires it with fence + 1.
//!
//! The holder process is this binary run again with `TOLLGATE_LOCK_HOLDER_DB` set (ignored
//! test `lock_holder_process`). Both processes open the same database file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tollgate_sqlite::tollgate::lock::Locks;
use tollgate_sqlite::{SqliteLockStore, SqliteStore};
use tollgate_testkit::child::ChildTest;
use tollgate_testkit::lock_faults::{
    hold_until_killed, killed_holder_is_taken_over_after_its_lease,
};

const DB: &str = "TOLLGATE_LOCK_HOLDER_DB";

async fn locks(db: &Path) -> Locks<SqliteLockStore> {
    let store = SqliteStore::builder(db).open().await.unwrap();
    Locks::new(SqliteLockStore::new(store).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_fence_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("locks.db");
    let locks = locks(&db).await;
    let env = [(DB, db.display().to_string())];
    let mut child = tokio::task::block_in_place(|| ChildTest::spawn("lock_holder_process", &env));
    killed_holder_is_taken_over_after_its_lease(&mut child, &locks).await;
}

/// The holder process: holds `fault_key(0)` until it is killed. Run only by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by a_killed_holder_process_is_taken_over_…"]
async fn lock_holder_process() {
    let db = std::env::var(DB).unwrap_or_else(|_| {
        panic!(
            "run only by a_killed_holder_process_is_taken_over_after_its_lease_with_a_higher_\
             fence_sqlite, which sets {DB}"
        )
    });
    hold_until_killed(locks(Path::new(&db)).await).await;
}
