//! S4 on SQLite: an effect enqueued inside the application's transaction exists exactly when
//! that transaction committed, survives the process (a new connection after the old one is
//! gone applies it), and is applied once by one of several workers racing for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tollgate_sqlite::rusqlite::params;
use tollgate_sqlite::tollgate::outbox::{
    Completion, Effect, EffectState, Outbox, Worker, WorkerOptions,
};
use tollgate_sqlite::tollgate::store::{Key, Owner, Settle};
use tollgate_sqlite::{SqliteOutbox, SqliteStore};
use tollgate_testkit::release_together;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s4_eight_workers_on_four_connections_apply_200_effects_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let outbox = outbox(&path).await;
    for i in 0..200 {
        outbox.enqueue(save(&format!("u{i}"))).await.unwrap();
    }
    let applied = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for i in 0..8 {
        let handle = if i < 4 {
            self::outbox(&path).await
        } else {
            outbox.clone()
        };
        let counted = Arc::clone(&applied);
        let options = WorkerOptions {
            batch: 8,
            ..WorkerOptions::default()
        };
        workers.push(
            Worker::new(handle, options).handler("save", move |e: Effect, _| {
                let counted = Arc::clone(&counted);
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    Ok(e.payload)
                }
            }),
        );
    }
    let workers = Arc::new(workers);
    let done = release_together(8, |i| {
        let workers = Arc::clone(&workers);
        async move {
            let mut done = 0;
            loop {
                let batch = workers[i].run_batch().await.unwrap();
                if batch.claimed == 0 {
                    return done;
                }
                done += batch.done;
            }
        }
    })
    .await;
    assert_eq!(done.iter().sum::<usize>(), 200);
    assert_eq!(
        applied.load(Ordering::SeqCst),
        200,
        "each effect applied once"
    );
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.done, stats.pending, stats.in_flight), (200, 0, 0));
    let users: i64 = outbox
        .store()
        .call(|c| {
            c.query_row(
                "SELECT count(DISTINCT key) FROM tollgate_outbox",
                params![],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(users, 200);
}

/// Three effects claimed by A with a zero lease, the oldest taken over by B: A's batch of
/// completions is fenced for that one only, and a repeated completion is accepted once.
async fn complete_all_fences_each_completion<S: Outbox>(outbox: &S) {
    let mut ids = Vec::new();
    for user in ["u0", "u1", "u2"] {
        ids.push(outbox.enqueue(save(user)).await.unwrap());
    }
    let a = outbox
        .claim(Owner::random(), Duration::ZERO, 3)
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    let b = outbox.claim(Owner::random(), lease, 1).await.unwrap();
    let taken: Vec<_> = b.iter().map(|c| (c.id, c.token.fence.0)).collect();
    assert_eq!(taken, [(ids[0], 2)]);
    let mut done: Vec<_> = a
        .iter()
        .map(|c| Completion {
            id: c.id,
            token: c.token,
            receipt: b"a".to_vec(),
        })
        .collect();
    done.push(done[1].clone());
    let settled = outbox.complete_all(done).await.unwrap();
    use Settle::{Accepted, Fenced};
    assert_eq!(settled, [Fenced, Accepted, Accepted, Fenced]);
    let b_done = Completion {
        id: ids[0],
        token: b[0].token,
        receipt: b"b".to_vec(),
    };
    assert_eq!(outbox.complete_all(vec![b_done]).await.unwrap(), [Accepted]);
    assert!(outbox.complete_all(Vec::new()).await.unwrap().is_empty());
    for (id, fence, by) in [(ids[0], 2, b"b"), (ids[1], 1, b"a"), (ids[2], 1, b"a")] {
        let record = outbox.read(id).await.unwrap().unwrap();
        assert_eq!(record.fence.0, fence);
        assert!(matches!(record.state, EffectState::Done { ref receipt } if receipt == by));
    }
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.done, stats.in_flight, stats.pending), (3, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_complete_all_fences_each_completion_by_its_own_token() {
    let dir = tempfile::tempdir().unwrap();
    complete_all_fences_each_completion(&outbox(&dir.path().join("app.db")).await).await;
}
