//! Transactional completion on SQLite: the work's own rows and the completion of its claim
//! commit in one transaction, so both or neither are stored.
//!
//! The failure between the two writes is injected with a trigger that aborts the write of a
//! completed record: the work's row is already written in the same transaction when it fires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tollgate_sqlite::rusqlite::params;
use tollgate_sqlite::tollgate::clock::{Clock, ManualClock};
use tollgate_sqlite::tollgate::once::{
    Commit, Error, Failure, Fingerprint, Key, OnUnknown, Once, RecordState, Store,
};
use tollgate_sqlite::tollgate::store::{StoreErrorKind, Timeline};
use tollgate_sqlite::{InTransaction, SqliteStore};

const FAIL_COMPLETION: &str = "CREATE TRIGGER fail_completion BEFORE UPDATE ON tollgate_once
     WHEN NEW.state = 1 BEGIN SELECT RAISE(ABORT, 'injected: crash before the completion'); END;
     CREATE TRIGGER fail_completion_insert BEFORE INSERT ON tollgate_once
     WHEN NEW.state = 1 BEGIN SELECT RAISE(ABORT, 'injected: crash before the completion'); END;";

fn key() -> Key {
    Key::new("daily-report", "user-1/2026-11-21")
}

async fn store(dir: &tempfile::TempDir, clock: &ManualClock) -> SqliteStore {
    let store = SqliteStore::builder(dir.path().join("app.db"))
        .timeline(Timeline::from_clock(Clock::Manual(clock.clone())))
        .open()
        .await
        .unwrap();
    store
        .call(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS reports (day TEXT PRIMARY KEY, summary TEXT)",
            )
        })
        .await
        .unwrap();
    store
}

async fn reports(store: &SqliteStore) -> i64 {
    let count = "SELECT count(*) FROM reports";
    store
        .call(move |c| c.query_row(count, [], |r| r.get(0)))
        .await
        .unwrap()
}

async fn state(store: &SqliteStore) -> RecordState {
    store.read(&key()).await.unwrap().unwrap().state
}

/// The report's writes, returning its summary as the call's value.
fn write_report(summary: &str) -> impl Commit<SqliteStore, Value = String, Error = String> {
    let summary = summary.to_owned();
    InTransaction::new(move |tx| {
        tx.execute(
            "INSERT INTO reports VALUES ('2026-11-21', ?1)",
            params![summary],
        )?;
        Ok(Ok(summary))
    })
}

#[tokio::test]
async fn the_work_rows_and_the_completion_commit_together() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), ManualClock::new());
    let store = store(&dir, &clock).await;
    let once = Once::new(store.clone());
    let made = once
        .call(key(), Fingerprint::new("v1"))
        .run_committed(|| async { Ok::<_, Failure<String>>(write_report("a good day")) });
    let made = made.await.unwrap();
    assert_eq!((made.value.as_str(), made.replayed), ("a good day", false));
    assert_eq!(reports(&store).await, 1);
    assert!(matches!(state(&store).await, RecordState::Completed { .. }));
    let again = once.run(key(), Fingerprint::new("v1"), || async {
        Ok::<_, Failure<String>>("never".to_string())
    });
    let again = again.await.unwrap();
    assert_eq!((again.value.as_str(), again.replayed), ("a good day", true));
}

#[tokio::test]
async fn a_failure_between_the_report_and_the_completion_stores_neither() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), ManualClock::new());
    let store = store(&dir, &clock).await;
    store
        .call(|c| c.execute_batch(FAIL_COMPLETION))
        .await
        .unwrap();
    let once = Once::new(store.clone());
    let made = once
        .call(key(), Fingerprint::new("v1"))
        .run_committed(|| async { Ok::<_, Failure<String>>(write_report("lost")) });
    match made.await {
        Err(Error::Store(e)) => assert_eq!(e.kind(), StoreErrorKind::Rejected, "{e}"),
        other => panic!("expected the injected store failure, got {other:?}"),
    }
    assert_eq!(
        reports(&store).await,
        0,
        "the report rolled back with the completion"
    );
    assert!(matches!(
        state(&store).await,
        RecordState::InProgress { .. }
    ));
}

/// The naive shape — the work writes its rows in its own transaction, the engine completes the
/// claim in another — leaves a stored report beside an unfinished claim under the same fault.
#[tokio::test]
async fn naive_separate_transactions_leave_a_report_beside_an_unfinished_claim() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), ManualClock::new());
    let store = store(&dir, &clock).await;
    store
        .call(|c| c.execute_batch(FAIL_COMPLETION))
        .await
        .unwrap();
    let once = Once::new(store.clone());
    let writer = store.clone();
    let made = once.run(key(), Fingerprint::new("v1"), move || async move {
        let insert = |c: &mut tollgate_sqlite::rusqlite::Connection| {
            c.execute(
                "INSERT INTO reports VALUES ('2026-11-21', 'a good day')",
                [],
            )
        };
        writer.call(insert).await.unwrap();
        Ok::<_, Failure<String>>("a good day".to_string())
    });
    assert!(matches!(made.await, Err(Error::Store(_))));
    assert_eq!(reports(&store).await, 1, "the report is stored");
    assert!(
        matches!(state(&store).await, RecordState::InProgress { .. }),
        "…but its claim is unfinished: the state transactional completion rules out"
    );
}

#[tokio::test]
async fn a_holder_that_lost_its_lease_commits_nothing() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), ManualClock::new());
    let store = store(&dir, &clock).await;
    let holder = Once::builder(store.clone())
        .lease(Duration::from_secs(30), Duration::from_secs(10))
        .build();
    let rival = Once::builder(store.clone())
        .on_unknown(OnUnknown::Rerun)
        .build();
    let (paused, resume) = tokio::sync::oneshot::channel::<()>();
    let (entered, has_entered) = tokio::sync::oneshot::channel::<()>();
    let held = tokio::spawn(async move {
        holder
            .call(key(), Fingerprint::new("v1"))
            .run_committed(move || async move {
                let _ = entered.send(());
                let _ = resume.await; // a holder paused past its lease (GC, stalled VM)
                Ok::<_, Failure<String>>(write_report("stale"))
            })
            .await
    });
    has_entered.await.unwrap();
    clock.advance(Duration::from_secs(30));
    let taken = rival
        .call(key(), Fingerprint::new("v1"))
        .run_committed(|| async { Ok::<_, Failure<String>>(write_report("fresh")) });
    assert_eq!(taken.await.unwrap().value, "fresh");
    paused.send(()).unwrap();
    assert_eq!(held.await.unwrap(), Err(Error::Fenced));
    let summary = "SELECT summary FROM reports";
    let stored: String = store
        .call(move |c| c.query_row(summary, [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!((reports(&store).await, stored.as_str()), (1, "fresh"));
}

#[tokio::test]
async fn a_failure_from_the_writes_rolls_them_back_and_is_recorded() {
    let (dir, clock) = (tempfile::tempdir().unwrap(), ManualClock::new());
    let store = store(&dir, &clock).await;
    let once = Once::new(store.clone());
    let made = once
        .call(key(), Fingerprint::new("v1"))
        .run_committed(|| async {
            Ok::<_, Failure<String>>(InTransaction::new(|tx| {
                tx.execute("INSERT INTO reports VALUES ('2026-11-21', 'half')", [])?;
                Ok(Err::<String, _>(Failure::permanent(
                    "the letters changed".to_string(),
                )))
            }))
        });
    let refused = Error::Failed(Failure::permanent("the letters changed".to_string()));
    assert_eq!(made.await, Err(refused.clone()));
    assert_eq!(reports(&store).await, 0, "rolled back to the savepoint");
    let replayed = once.run(key(), Fingerprint::new("v1"), || async {
        Ok::<_, Failure<String>>("never".to_string())
    });
    assert_eq!(
        replayed.await,
        Err(refused),
        "the permanent failure is replayed"
    );
}
