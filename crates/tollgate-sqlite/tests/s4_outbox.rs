//! S4 on SQLite: an effect enqueued inside the application's transaction exists exactly when
//! that transaction committed and survives the process (a new connection after the old one
//! is gone applies it); and the outbox conformance suite (`s4_outbox_conformance::*`: retries,
//! dead letters, a stalled worker fenced, batches of completions fenced one by one, eight
//! workers on connections of their own) on a fresh database file per case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tollgate_sqlite::tollgate::clock::{Clock, ManualClock};
use tollgate_sqlite::tollgate::outbox::{Effect, EffectState, Outbox, Worker, WorkerOptions};
use tollgate_sqlite::tollgate::store::{Key, Timeline};
use tollgate_sqlite::{SqliteOutbox, SqliteStore};
use tollgate_testkit::OutboxBackend;

async fn outbox(path: &std::path::Path) -> SqliteOutbox {
    let store = SqliteStore::open(path).await.unwrap();
    store
        .call(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS answers (user TEXT, text TEXT)"))
        .await
        .unwrap();
    SqliteOutbox::new(store).await.unwrap()
}

fn save(user: &str) -> Effect {
    Effect::new("save", Key::new("questions", user), &user).unwrap()
}

#[tokio::test]
async fn s4_an_effect_enqueued_in_a_transaction_exists_only_if_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = outbox(&dir.path().join("app.db")).await;
    let (committed, rolled_back) = (outbox.clone(), outbox.clone());
    let id = outbox
        .store()
        .call(move |c| {
            let tx = c.transaction()?;
            tx.execute("INSERT INTO answers VALUES ('ann', 'q')", [])?;
            let id = committed.enqueue_in(&tx, &save("ann"))?;
            tx.commit()?;
            Ok(id)
        })
        .await
        .unwrap();
    let lost = outbox
        .store()
        .call(move |c| {
            let tx = c.transaction()?;
            tx.execute("INSERT INTO answers VALUES ('bob', 'q')", [])?;
            rolled_back.enqueue_in(&tx, &save("bob"))
            // dropped: rolled back
        })
        .await
        .unwrap();
    assert!(outbox.read(id).await.unwrap().is_some());
    assert_eq!(
        outbox.read(lost).await.unwrap(),
        None,
        "rolled back with its transaction"
    );
    assert_eq!(outbox.stats().await.unwrap().pending, 1);
}

#[tokio::test]
async fn s4_a_committed_effect_survives_its_process_and_is_applied_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let first = outbox(&path).await;
    let id = first
        .store()
        .call({
            let first = first.clone();
            move |c| {
                let tx = c.transaction()?;
                let id = first.enqueue_in(&tx, &save("cid"))?;
                tx.commit()?;
                Ok(id)
            }
        })
        .await
        .unwrap();
    drop(first); // the process answered and died before any worker ran
    let restarted = outbox(&path).await;
    let applied = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&applied);
    let worker = Worker::new(restarted.clone(), WorkerOptions::default()).handler(
        "save",
        move |effect: Effect, _| {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(effect.payload)
            }
        },
    );
    let batch = worker.run_batch().await.unwrap();
    assert_eq!((batch.claimed, batch.done), (1, 1));
    assert_eq!(applied.load(Ordering::SeqCst), 1);
    let record = restarted.read(id).await.unwrap().unwrap();
    assert!(matches!(record.state, EffectState::Done { .. }));
}

/// A fresh database file on a manual clock; each handle a store (a connection) of its own on
/// the file and the clock.
struct Backend {
    dir: tempfile::TempDir,
    clock: ManualClock,
}

impl OutboxBackend for Backend {
    type Outbox = SqliteOutbox;

    async fn connect(&self) -> SqliteOutbox {
        let timeline = Timeline::from_clock(Clock::Manual(self.clock.clone()));
        let path = self.dir.path().join("app.db");
        let store = SqliteStore::builder(path).timeline(timeline).open();
        SqliteOutbox::new(store.await.unwrap()).await.unwrap()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

async fn backend() -> Backend {
    Backend {
        dir: tempfile::tempdir().unwrap(),
        clock: ManualClock::new(),
    }
}

tollgate_testkit::outbox_conformance!(backend);
