//! The SQLite outbox's two tables: effects to apply in `tollgate_outbox_open`, finished ones in
//! `tollgate_outbox_closed`. An enqueue appends one row to the open table and writes nothing
//! else; an effect moves between the tables with its id; ids are never reused; the single table
//! of earlier versions is moved into the two, effect by effect, when an outbox is opened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tollgate_sqlite::rusqlite::params;
use tollgate_sqlite::tollgate::outbox::{Effect, EffectId, EffectState, Outbox, OutboxStats};
use tollgate_sqlite::tollgate::store::{Key, Owner, Settle};
use tollgate_sqlite::{SqliteOutbox, SqliteStore};

const LEASE: Duration = Duration::from_secs(30);

fn effect(n: u64) -> Effect {
    Effect::new("save", Key::new("questions", n.to_string()), &n).unwrap()
}

/// Row counts of (open, closed).
async fn rows(outbox: &SqliteOutbox) -> (i64, i64) {
    outbox
        .store()
        .call(|c| {
            let count =
                |t: &str| c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0));
            Ok((
                count("tollgate_outbox_open")?,
                count("tollgate_outbox_closed")?,
            ))
        })
        .await
        .unwrap()
}

/// Claims everything visible and completes it.
async fn drain(outbox: &SqliteOutbox) -> usize {
    let worker = Owner::random();
    let claimed = outbox.claim(worker, LEASE, 1_000).await.unwrap();
    for c in &claimed {
        let settled = outbox
            .complete(c.id, c.token, b"ok".to_vec())
            .await
            .unwrap();
        assert_eq!(settled, Settle::Accepted);
    }
    claimed.len()
}

#[tokio::test]
async fn an_effect_moves_to_the_closed_table_with_its_id_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::new(SqliteStore::open(dir.path().join("app.db")).await.unwrap())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(outbox.enqueue(effect(n)).await.unwrap());
    }
    assert_eq!(ids, [EffectId(1), EffectId(2), EffectId(3)]);
    assert_eq!(rows(&outbox).await, (3, 0));
    assert_eq!(drain(&outbox).await, 3);
    assert_eq!(
        rows(&outbox).await,
        (0, 3),
        "all three moved, none left open"
    );
    for &id in &ids {
        let record = outbox.read(id).await.unwrap().unwrap();
        assert_eq!(record.id, id);
        assert_eq!(
            record.state,
            EffectState::Done {
                receipt: b"ok".to_vec()
            }
        );
        assert_eq!(record.attempts, 1);
    }
    // The open table is empty: its own largest id would restart at 1.
    assert_eq!(outbox.enqueue(effect(3)).await.unwrap(), EffectId(4));

    // A dead letter re-queued goes back to the open table under its id; the next id follows it.
    let claimed = outbox.claim(Owner::random(), LEASE, 1).await.unwrap();
    let settled = outbox
        .dead_letter(claimed[0].id, claimed[0].token, "refused".into())
        .await
        .unwrap();
    assert_eq!(settled, Settle::Accepted);
    assert_eq!(rows(&outbox).await, (0, 4));
    assert_eq!(outbox.dead_letters(10).await.unwrap()[0].id, EffectId(4));
    assert!(outbox.requeue(EffectId(4)).await.unwrap());
    assert_eq!(rows(&outbox).await, (1, 3));
    assert_eq!(outbox.enqueue(effect(4)).await.unwrap(), EffectId(5));
    let requeued = outbox.read(EffectId(4)).await.unwrap().unwrap();
    assert!(matches!(requeued.state, EffectState::Pending { .. }));
    assert_eq!(requeued.last_error.as_deref(), Some("refused"));
    assert_eq!(drain(&outbox).await, 2);
    assert_eq!(rows(&outbox).await, (0, 5));
}

#[tokio::test]
async fn an_enqueue_inside_the_callers_transaction_writes_one_row_of_the_open_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("app.db")).await.unwrap();
    let outbox = SqliteOutbox::new(store).await.unwrap();
    let changes = {
        let outbox = outbox.clone();
        outbox
            .clone()
            .store()
            .call(move |c| {
                let tx = c.transaction()?;
                let before = tx.query_row("SELECT total_changes()", [], |r| r.get::<_, i64>(0))?;
                outbox.enqueue_in(&tx, &effect(1))?;
                let after = tx.query_row("SELECT total_changes()", [], |r| r.get::<_, i64>(0))?;
                tx.commit()?;
                Ok(after - before)
            })
            .await
            .unwrap()
    };
    assert_eq!(changes, 1, "one row inserted, nothing else written");
    assert_eq!(rows(&outbox).await, (1, 0));
    let sequence_tables: i64 = outbox
        .store()
        .call(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(sequence_tables, 0, "no AUTOINCREMENT counter to update");
}

/// The table and index of earlier versions, as they created them.
const LEGACY: &str = "CREATE TABLE tollgate_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    namespace   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    state       INTEGER NOT NULL,
    visible_at  INTEGER,
    owner       BLOB,
    lease_until INTEGER,
    receipt     BLOB,
    attempts    INTEGER NOT NULL,
    fence       INTEGER NOT NULL,
    last_error  TEXT,
    enqueued_at INTEGER NOT NULL
);
CREATE INDEX tollgate_outbox_pending ON tollgate_outbox (state, id) WHERE state IN (0, 1);";

#[tokio::test]
async fn the_single_table_of_earlier_versions_is_moved_into_the_two_effect_by_effect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let owner = Owner(7).0.to_be_bytes().to_vec();
    store
        .call(move |c| {
            c.execute_batch(LEGACY)?;
            let mut insert = c.prepare(
                "INSERT INTO tollgate_outbox (id, kind, namespace, key, payload, state, \
                 visible_at, owner, lease_until, receipt, attempts, fence, last_error, \
                 enqueued_at) VALUES (?1, 'save', 'questions', ?2, x'01', ?3, ?4, ?5, ?6, ?7, \
                 ?8, ?9, ?10, 1000)",
            )?;
            // pending (retried once), in flight, done with a receipt, dead with its error
            let none: Option<Vec<u8>> = None;
            insert.execute(params![
                3,
                "a",
                0,
                5000,
                none,
                None::<i64>,
                none,
                1,
                1,
                "boom"
            ])?;
            insert.execute(params![
                5,
                "b",
                1,
                None::<i64>,
                owner,
                9000,
                none,
                2,
                2,
                None::<String>
            ])?;
            insert.execute(params![
                8,
                "c",
                2,
                None::<i64>,
                none,
                None::<i64>,
                b"r".to_vec(),
                1,
                1,
                None::<String>
            ])?;
            insert.execute(params![
                9,
                "d",
                3,
                None::<i64>,
                none,
                None::<i64>,
                none,
                5,
                5,
                "gave up"
            ])?;
            Ok(())
        })
        .await
        .unwrap();
    let outbox = SqliteOutbox::new(store).await.unwrap();
    assert_eq!(rows(&outbox).await, (2, 2));
    let legacy_left: i64 = outbox
        .store()
        .call(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'tollgate_outbox' \
                 OR name = 'tollgate_outbox_pending'",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(legacy_left, 0, "the old table and its index are gone");

    let read = |id| {
        let outbox = outbox.clone();
        async move { outbox.read(EffectId(id)).await.unwrap().unwrap() }
    };
    let pending = read(3).await;
    assert_eq!(pending.effect.key, Key::new("questions", "a"));
    assert_eq!(
        pending.state,
        EffectState::Pending {
            visible_at: tollgate_sqlite::tollgate::store::Timestamp(5000)
        }
    );
    assert_eq!(
        (pending.attempts, pending.last_error.as_deref()),
        (1, Some("boom"))
    );
    assert_eq!(
        read(5).await.state,
        EffectState::InFlight {
            owner: Owner(7),
            lease_until: tollgate_sqlite::tollgate::store::Timestamp(9000)
        }
    );
    assert_eq!(read(5).await.fence.0, 2);
    assert_eq!(
        read(8).await.state,
        EffectState::Done {
            receipt: b"r".to_vec()
        }
    );
    let dead = outbox.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (EffectId(9), 5));
    assert_eq!(dead[0].last_error.as_deref(), Some("gave up"));
    assert_eq!(
        outbox.stats().await.unwrap(),
        OutboxStats {
            pending: 1,
            in_flight: 1,
            done: 1,
            dead: 1,
            oldest_unapplied: Some(tollgate_sqlite::tollgate::store::Timestamp(1000)),
        }
    );
    assert_eq!(outbox.enqueue(effect(0)).await.unwrap(), EffectId(10));

    // Opening again (another process, a restart) finds nothing left to move.
    drop(outbox);
    let again = SqliteOutbox::new(SqliteStore::open(&path).await.unwrap())
        .await
        .unwrap();
    assert_eq!(rows(&again).await, (3, 2));
}
