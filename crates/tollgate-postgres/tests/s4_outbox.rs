//! S4 on PostgreSQL: an effect enqueued inside the application's transaction exists exactly
//! when that transaction committed, survives its process, is claimed by one worker at a time
//! (`FOR UPDATE SKIP LOCKED`); and the outbox conformance suite (`s4_outbox_conformance::*`:
//! retries, dead letters, a stalled worker fenced, batches of completions fenced one by one,
//! eight workers on pools of their own) on a fresh schema per case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tollgate_postgres::tollgate::outbox::{Effect, EffectState, Outbox, Worker, WorkerOptions};
use tollgate_postgres::tollgate::side::{SideOptions, SideTasks, Spawned};
use tollgate_postgres::tollgate::store::{Key, Owner};
use tollgate_postgres::{PgOutbox, PinnedTime, PostgresStore};
use tollgate_testkit::OutboxBackend;

/// A store on `schema` with a pool of its own of `size` connections, no listener.
async fn store_on(schema: &str, size: usize, time: Option<&PinnedTime>) -> PostgresStore {
    let server = support::shared_server().await;
    let mut builder = PostgresStore::builder(support::pool(server, size))
        .schema(schema)
        .timeout(support::TIMEOUT);
    if let Some(time) = time {
        builder = builder.pinned_time(time.clone());
    }
    builder.open().await.unwrap()
}

/// An outbox on a fresh schema holding the application's `answers` table.
async fn outbox(time: Option<&PinnedTime>) -> PgOutbox {
    let store = store_on(&support::fresh_schema(), 4, time).await;
    let table = format!(
        "CREATE TABLE {}.answers (who text, text text)",
        store.schema()
    );
    let client = store.pool().get().await.unwrap();
    client.batch_execute(&table).await.unwrap();
    PgOutbox::new(&store)
}

fn save(user: &str) -> Effect {
    Effect::new("save", Key::new("questions", user), &user).unwrap()
}

/// Writes an answer and enqueues its save in one transaction; commits it or rolls it back.
async fn answer_and_enqueue(outbox: &PgOutbox, user: &str, commit: bool) -> u64 {
    let mut client = outbox.store().pool().get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let insert = format!(
        "INSERT INTO {}.answers VALUES ($1, 'q')",
        outbox.store().schema()
    );
    tx.execute(&insert, &[&user]).await.unwrap();
    let id = outbox.enqueue_in(&tx, &save(user)).await.unwrap();
    match commit {
        true => tx.commit().await.unwrap(),
        false => tx.rollback().await.unwrap(),
    }
    id.0
}

async fn count(outbox: &PgOutbox, sql: &str) -> i64 {
    let sql = sql.replace("{s}", outbox.store().schema());
    let client = outbox.store().pool().get().await.unwrap();
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

/// A worker whose handler counts how often each effect key was applied.
fn counting_worker(
    outbox: PgOutbox,
    batch: usize,
    seen: &Arc<Mutex<HashMap<String, usize>>>,
) -> Worker<PgOutbox> {
    let seen = Arc::clone(seen);
    let options = WorkerOptions {
        batch,
        ..WorkerOptions::default()
    };
    Worker::new(outbox, options).handler("save", move |effect: Effect, _| {
        let seen = Arc::clone(&seen);
        async move {
            *seen
                .lock()
                .unwrap()
                .entry(effect.key.key().to_owned())
                .or_default() += 1;
            Ok(effect.payload)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_an_effect_enqueued_in_a_transaction_exists_only_if_it_commits() {
    let outbox = outbox(None).await;
    let kept = answer_and_enqueue(&outbox, "ann", true).await;
    let lost = answer_and_enqueue(&outbox, "bob", false).await;
    let record = outbox
        .read(tollgate_postgres::tollgate::outbox::EffectId(kept))
        .await;
    let record = record.unwrap().unwrap();
    assert_eq!((record.attempts, record.fence.0), (0, 0));
    assert!(matches!(record.state, EffectState::Pending { .. }));
    assert_eq!(record.effect, save("ann"));
    let gone = outbox
        .read(tollgate_postgres::tollgate::outbox::EffectId(lost))
        .await;
    assert_eq!(gone.unwrap(), None, "rolled back with its transaction");
    assert_eq!(count(&outbox, "SELECT count(*) FROM {s}.answers").await, 1);
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.done), (1, 0, 0));
    assert_eq!(stats.oldest_unapplied, Some(record.enqueued_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_a_committed_effect_survives_its_pool_and_is_applied_by_a_new_store() {
    let first = outbox(None).await;
    let schema = first.store().schema().to_owned();
    let id = answer_and_enqueue(&first, "cid", true).await;
    drop(first); // the process answered and died before any worker ran: its pool is gone
    let restarted = PgOutbox::new(&store_on(&schema, 2, None).await);
    let seen = Arc::default();
    let worker = counting_worker(restarted.clone(), 16, &seen);
    let batch = worker.run_batch().await.unwrap();
    assert_eq!((batch.claimed, batch.done), (1, 1));
    assert_eq!(seen.lock().unwrap().get("cid"), Some(&1));
    let record = restarted
        .read(tollgate_postgres::tollgate::outbox::EffectId(id))
        .await;
    let record = record.unwrap().unwrap();
    assert!(
        matches!(record.state, EffectState::Done { ref receipt } if *receipt == save("cid").payload)
    );
    assert_eq!(record.attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_a_claim_skips_rows_locked_by_another_transaction() {
    let outbox = outbox(None).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(outbox.enqueue(save(&format!("u{i}"))).await.unwrap());
    }
    let mut client = outbox.store().pool().get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let lock = format!(
        "SELECT id FROM {}.outbox WHERE id <= $1 FOR UPDATE",
        outbox.store().schema()
    );
    let third = i64::try_from(ids[2].0).unwrap();
    assert_eq!(tx.query(&lock, &[&third]).await.unwrap().len(), 3);
    // Without SKIP LOCKED this claim would wait for `tx` (and time out).
    let lease = Duration::from_secs(30);
    let first = outbox.claim(Owner::random(), lease, 5).await.unwrap();
    let first: Vec<_> = first.iter().map(|c| c.id).collect();
    assert_eq!(
        first,
        ids[3..8],
        "the 3 locked rows are skipped, not waited for"
    );
    tx.rollback().await.unwrap();
    let rest = outbox.claim(Owner::random(), lease, 5).await.unwrap();
    let rest: Vec<_> = rest
        .iter()
        .map(|c| (c.id, c.attempt, c.token.fence.0))
        .collect();
    assert_eq!(
        rest,
        ids[..3].iter().map(|id| (*id, 1, 1)).collect::<Vec<_>>()
    );
    assert!(
        outbox
            .claim(Owner::random(), lease, 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s4_shutdown_with_100_side_effects_in_flight_hands_the_unfinished_to_the_outbox() {
    let outbox = outbox(None).await;
    let side = SideTasks::with_outbox(SideOptions::default(), outbox.clone());
    let (finished, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
    for i in 0..100 {
        let (finished, gate) = (Arc::clone(&finished), Arc::clone(&gate));
        let effect = save(&format!("u{i}"));
        let spawned = side.spawn_effect("save", effect, move |_| async move {
            // Half of them finish before the deadline; the other half never do.
            if i % 2 == 0 {
                finished.fetch_add(1, Ordering::SeqCst);
                return Ok::<(), String>(());
            }
            gate.acquire().await.map_err(|e| e.to_string())?.forget();
            Ok(())
        });
        assert_eq!(spawned, Spawned::Accepted);
    }
    let drained = side.shutdown(Duration::from_millis(500)).await;
    assert_eq!(
        (drained.ok, drained.to_outbox, drained.aborted),
        (50, 50, 0)
    );
    assert_eq!(finished.load(Ordering::SeqCst), 50);
    let stats = outbox.stats().await.unwrap();
    assert_eq!(
        stats.pending, 50,
        "every unfinished effect is in the outbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_an_effect_enqueued_in_a_pooled_transaction_exists_only_if_it_commits() {
    let outbox = outbox(None).await;
    let insert = format!(
        "INSERT INTO {}.answers VALUES ($1, 'q')",
        outbox.store().schema()
    );
    let mut ids = Vec::new();
    // Every connection of the pool prepares the statement once, then takes it from its cache.
    for (i, commit) in [true, false, true, false, true, true]
        .into_iter()
        .enumerate()
    {
        let mut client = outbox.store().pool().get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        let user = format!("u{i}");
        tx.execute(&insert, &[&user]).await.unwrap();
        let id = outbox.enqueue_in_pooled(&tx, &save(&user)).await.unwrap();
        match commit {
            true => tx.commit().await.unwrap(),
            false => tx.rollback().await.unwrap(),
        }
        ids.push((id, commit, user));
    }
    for (id, committed, user) in &ids {
        let record = outbox.read(*id).await.unwrap();
        match committed {
            true => assert_eq!(record.unwrap().effect, save(user)),
            false => assert_eq!(record, None, "{user} rolled back with its transaction"),
        }
    }
    assert_eq!(count(&outbox, "SELECT count(*) FROM {s}.answers").await, 4);
    assert_eq!(outbox.stats().await.unwrap().pending, 4);
}

/// A fresh schema with the pinned time every handle shares; each handle a store with a pool
/// of its own.
struct Backend {
    schema: String,
    time: PinnedTime,
}

impl OutboxBackend for Backend {
    type Outbox = PgOutbox;

    async fn connect(&self) -> PgOutbox {
        PgOutbox::new(&store_on(&self.schema, 2, Some(&self.time)).await)
    }

    async fn advance(&self, by: Duration) {
        self.time.advance(by);
    }
}

async fn backend() -> Backend {
    let time = PinnedTime::new();
    let schema = outbox(Some(&time)).await.store().schema().to_owned();
    Backend { schema, time }
}

tollgate_testkit::outbox_conformance!(backend);
