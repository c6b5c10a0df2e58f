//! Transactional completion on PostgreSQL: the work's own rows and the completion of its
//! claim commit in one transaction, so both or neither are stored.
//!
//! The failure between the two writes is injected with a trigger that aborts the write of a
//! completed record: the work's row is already written in the same transaction when it fires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use tollgate_postgres::tollgate::once::{
    Commit, Completion, Error, Failure, Fingerprint, Key, OnUnknown, Once, RecordState, Settle,
    Store, encode,
};
use tollgate_postgres::tollgate::store::StoreErrorKind;
use tollgate_postgres::{InTransaction, PinnedTime, PostgresStore};

fn key() -> Key {
    Key::new("daily-report", "user-1/2026-11-21")
}

/// A store on a fresh schema holding a `reports` table, its time pinned.
async fn store(time: &PinnedTime) -> PostgresStore {
    let server = support::shared_server().await;
    let store = support::store(server, &support::fresh_schema(), Some(time)).await;
    let table = format!(
        "CREATE TABLE {}.reports (day text PRIMARY KEY, summary text)",
        store.schema()
    );
    store
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&table)
        .await
        .unwrap();
    store
}

/// Makes the write of a completed record fail, as a crash between the work's rows and the
/// completion would.
async fn fail_completions(store: &PostgresStore) {
    let s = store.schema();
    let sql = format!(
        "CREATE FUNCTION {s}.refuse() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'injected: crash before the completion'; END $$;
         CREATE TRIGGER fail_completion BEFORE UPDATE ON {s}.once
             FOR EACH ROW WHEN (NEW.state = 1) EXECUTE FUNCTION {s}.refuse();"
    );
    store
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&sql)
        .await
        .unwrap();
}

async fn reports(store: &PostgresStore) -> i64 {
    let count = format!("SELECT count(*) FROM {}.reports", store.schema());
    let client = store.pool().get().await.unwrap();
    client.query_one(&count, &[]).await.unwrap().get(0)
}

async fn state(store: &PostgresStore) -> RecordState {
    store.read(&key()).await.unwrap().unwrap().state
}

/// The report's writes, returning its summary as the call's value.
fn write_report(
    schema: &str,
    summary: &str,
) -> impl Commit<PostgresStore, Value = String, Error = String> + use<> {
    let insert = format!("INSERT INTO {schema}.reports VALUES ('2026-11-21', $1)");
    let summary = summary.to_owned();
    InTransaction::new(move |tx| {
        Box::pin(async move {
            tx.execute(&insert, &[&summary]).await?;
            Ok(Ok(summary))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_rows_and_the_completion_commit_together() {
    let store = store(&PinnedTime::new()).await;
    let once = Once::new(store.clone());
    let schema = store.schema().to_owned();
    let made = once
        .call(key(), Fingerprint::new("v1"))
        .run_committed(move || async move {
            Ok::<_, Failure<String>>(write_report(&schema, "a good day"))
        });
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_between_the_report_and_the_completion_stores_neither() {
    let store = store(&PinnedTime::new()).await;
    fail_completions(&store).await;
    let once = Once::new(store.clone());
    let schema = store.schema().to_owned();
    let made = once
        .call(key(), Fingerprint::new("v1"))
        .run_committed(
            move || async move { Ok::<_, Failure<String>>(write_report(&schema, "lost")) },
        );
    match made.await {
        Err(Error::Store(e)) => {
            assert_eq!(e.kind(), StoreErrorKind::Other, "{e}");
            assert!(format!("{:?}", e).contains("injected"), "{e:?}");
        }
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_separate_transactions_leave_a_report_beside_an_unfinished_claim() {
    let store = store(&PinnedTime::new()).await;
    fail_completions(&store).await;
    let once = Once::new(store.clone());
    let pool = store.pool().clone();
    let insert = format!(
        "INSERT INTO {}.reports VALUES ('2026-11-21', 'a good day')",
        store.schema()
    );
    let made = once.run(key(), Fingerprint::new("v1"), move || async move {
        pool.get()
            .await
            .unwrap()
            .execute(&insert, &[])
            .await
            .unwrap();
        Ok::<_, Failure<String>>("a good day".to_string())
    });
    assert!(matches!(made.await, Err(Error::Store(_))));
    assert_eq!(reports(&store).await, 1, "the report is stored");
    assert!(
        matches!(state(&store).await, RecordState::InProgress { .. }),
        "…but its claim is unfinished: the state transactional completion rules out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_lost_its_lease_commits_nothing() {
    let time = PinnedTime::new();
    let store = store(&time).await;
    let holder = Once::builder(store.clone())
        .lease(Duration::from_secs(30), Duration::from_secs(10))
        .build();
    let rival = Once::builder(store.clone())
        .on_unknown(OnUnknown::Rerun)
        .build();
    let (paused, resume) = tokio::sync::oneshot::channel::<()>();
    let (entered, has_entered) = tokio::sync::oneshot::channel::<()>();
    let schema = store.schema().to_owned();
    let held = tokio::spawn({
        let schema = schema.clone();
        async move {
            holder
                .call(key(), Fingerprint::new("v1"))
                .run_committed(move || async move {
                    let _ = entered.send(());
                    let _ = resume.await; // a holder paused past its lease (GC, stalled VM)
                    Ok::<_, Failure<String>>(write_report(&schema, "stale"))
                })
                .await
        }
    });
    has_entered.await.unwrap();
    time.advance(Duration::from_secs(30));
    let taken = rival
        .call(key(), Fingerprint::new("v1"))
        .run_committed(
            move || async move { Ok::<_, Failure<String>>(write_report(&schema, "fresh")) },
        );
    assert_eq!(taken.await.unwrap().value, "fresh");
    paused.send(()).unwrap();
    assert_eq!(held.await.unwrap(), Err(Error::Fenced));
    let summary = format!("SELECT summary FROM {}.reports", store.schema());
    let client = store.pool().get().await.unwrap();
    let stored: String = client.query_one(&summary, &[]).await.unwrap().get(0);
    assert_eq!((reports(&store).await, stored.as_str()), (1, "fresh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_from_the_writes_rolls_them_back_and_is_recorded() {
    let store = store(&PinnedTime::new()).await;
    let once = Once::new(store.clone());
    let insert = format!(
        "INSERT INTO {}.reports VALUES ('2026-11-21', 'half')",
        store.schema()
    );
    let made = once
        .call(key(), Fingerprint::new("v1"))
        .run_committed(move || async move {
            Ok::<_, Failure<String>>(InTransaction::new(move |tx| {
                Box::pin(async move {
                    tx.execute(&insert, &[]).await?;
                    Ok(Err::<String, _>(Failure::permanent(
                        "the letters changed".to_string(),
                    )))
                })
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

/// `complete_in`: the completion joins a transaction the caller opened on a connection of
/// its own, and commits — or rolls back — with the caller's other writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_inside_the_callers_own_transaction_commits_or_rolls_back_with_it() {
    let store = store(&PinnedTime::new()).await;
    let (client, connection) = support::config(support::shared_server().await)
        .connect(tollgate_postgres::tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut client = client;
    let insert = format!(
        "INSERT INTO {}.reports VALUES ('2026-11-21', 'mine')",
        store.schema()
    );
    for commit in [false, true] {
        let token = tollgate_testkit::acquire(&store, 7).await;
        let completion = Completion {
            key: tollgate_testkit::key(),
            token,
            retention: Duration::from_secs(60),
        };
        let tx = client.transaction().await.unwrap();
        tx.execute(&insert, &[]).await.unwrap();
        let result = encode(&"mine").unwrap();
        let settled = store.complete_in(&tx, &completion, result).await.unwrap();
        assert_eq!(settled, Settle::Accepted);
        let stale = Completion {
            token: tollgate_testkit::token(8, token.fence.0),
            ..completion
        };
        let fenced = store
            .complete_in(&tx, &stale, b"\"x\"".to_vec())
            .await
            .unwrap();
        assert_eq!(
            fenced,
            Settle::Fenced,
            "another owner is fenced inside the transaction"
        );
        let record = store.read(&tollgate_testkit::key()).await.unwrap().unwrap();
        assert!(
            matches!(record.state, RecordState::InProgress { .. }),
            "not visible before the caller commits"
        );
        match commit {
            false => tx.rollback().await.unwrap(),
            true => tx.commit().await.unwrap(),
        }
        let record = store.read(&tollgate_testkit::key()).await.unwrap().unwrap();
        let expected = (commit, i64::from(commit));
        let completed = matches!(record.state, RecordState::Completed { .. });
        assert_eq!((completed, reports(&store).await), expected);
        if !commit {
            // Free the key again for the second round: the holder gives up retryably.
            let key = tollgate_testkit::key();
            let freed = store.fail(&key, token, vec![], true, Duration::ZERO);
            assert_eq!(freed.await.unwrap(), Settle::Accepted);
        }
    }
}
