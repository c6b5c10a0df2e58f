//! S4 on PostgreSQL: an effect enqueued inside the application's transaction exists exactly
//! when that transaction committed, survives its process, is claimed by one worker at a time
//! (`FOR UPDATE SKIP LOCKED`) and applied once by its key even when a stalled worker wakes
//! up; failures are retried, dead-lettered and re-queued with exact attempt counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tollgate_postgres::tollgate::once::{Failure, Fingerprint, Once};
use tollgate_postgres::tollgate::outbox::{
    Applied, Completion, Effect, EffectState, HandlerError, Outbox, Worker, WorkerOptions,
};
use tollgate_postgres::tollgate::side::{SideOptions, SideTasks, Spawned};
use tollgate_postgres::tollgate::store::{Key, LeaseTiming, Owner, Settle};
use tollgate_postgres::{PgOutbox, PinnedTime, PostgresStore};
use tollgate_testkit::release_together;

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
async fn s4_eight_workers_on_their_own_connections_apply_200_effects_once_each() {
    let outbox = outbox(None).await;
    let schema = outbox.store().schema().to_owned();
    // Enqueued in one transaction: all 200 become claimable together when it commits.
    let mut client = outbox.store().pool().get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    for i in 0..200 {
        outbox
            .enqueue_in(&tx, &save(&format!("u{i}")))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let own = PgOutbox::new(&store_on(&schema, 2, None).await); // a pool of its own
        workers.push(counting_worker(own, 8, &seen));
    }
    let workers = Arc::new(workers);
    let done = release_together(8, |i| {
        let workers = Arc::clone(&workers);
        async move {
            let (mut claimed, mut done) = (0, 0);
            loop {
                let batch = workers[i].run_batch().await.unwrap();
                if batch.claimed == 0 {
                    return (claimed, done);
                }
                (claimed, done) = (claimed + batch.claimed, done + batch.done);
            }
        }
    })
    .await;
    assert_eq!(
        done.iter().map(|d| d.0).sum::<usize>(),
        200,
        "claimed once each"
    );
    assert_eq!(done.iter().map(|d| d.1).sum::<usize>(), 200);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 200);
    assert!(
        seen.values().all(|n| *n == 1),
        "each effect applied once: {seen:?}"
    );
    let stats = outbox.stats().await.unwrap();
    assert_eq!(
        (stats.done, stats.pending, stats.in_flight, stats.dead),
        (200, 0, 0, 0)
    );
    assert_eq!(stats.oldest_unapplied, None);
    let fences = "SELECT count(*) FROM {s}.outbox WHERE attempts = 1 AND fence = 1";
    assert_eq!(count(&outbox, fences).await, 200);
}

/// The save the handlers perform: fails while failures are left, then applies the effect
/// exactly once per key with `Once` on the same PostgreSQL store.
#[derive(Clone)]
struct Saved {
    applied: Arc<AtomicUsize>,
    failures_left: Arc<AtomicUsize>,
    once: Arc<Once<PostgresStore>>,
}

impl Saved {
    fn failing(store: &PostgresStore, times: usize) -> Self {
        Saved {
            applied: Arc::default(),
            failures_left: Arc::new(AtomicUsize::new(times)),
            once: Arc::new(Once::new(store.clone())),
        }
    }

    fn handler(&self) -> impl Fn(Effect, u32) -> Applied + Send + Sync + 'static {
        let saved = self.clone();
        move |effect: Effect, _attempt| {
            let saved = saved.clone();
            Box::pin(async move { saved.save(effect).await })
        }
    }

    async fn save(&self, effect: Effect) -> Result<Vec<u8>, HandlerError> {
        let left = self.failures_left.load(Ordering::SeqCst);
        if left > 0 {
            self.failures_left.store(left - 1, Ordering::SeqCst);
            return Err(HandlerError::retryable("database is locked"));
        }
        let applied = Arc::clone(&self.applied);
        let write = move || async move {
            applied.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Failure<String>>("saved".to_string())
        };
        let done = self
            .once
            .run(effect.key.clone(), Fingerprint::new("v1"), write);
        done.await
            .map(|o| o.value.into_bytes())
            .map_err(|e| HandlerError::retryable(e.to_string()))
    }

    fn count(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }
}

fn options(max_attempts: u32) -> WorkerOptions {
    WorkerOptions {
        max_attempts,
        lease: LeaseTiming::new(Duration::from_secs(10), Duration::from_secs(5)),
        ..WorkerOptions::default()
    }
}

/// Runs batches until nothing is pending; when a retry waits in its backoff (at most the
/// default 60 s), moves the store's pinned time past it instead of sleeping.
async fn drain(worker: &Worker<PgOutbox>, time: &PinnedTime) -> (usize, usize, usize) {
    let (mut done, mut retried, mut dead) = (0, 0, 0);
    loop {
        let batch = worker.run_batch().await.unwrap();
        (done, retried, dead) = (
            done + batch.done,
            retried + batch.retried,
            dead + batch.dead_lettered,
        );
        let stats = worker.outbox().stats().await.unwrap();
        if stats.pending + stats.in_flight == 0 {
            return (done, retried, dead);
        }
        if batch.claimed == 0 {
            time.advance(Duration::from_secs(61));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_save_failing_three_times_is_retried_and_saved_exactly_once() {
    let time = PinnedTime::new();
    let outbox = outbox(Some(&time)).await;
    let saved = Saved::failing(outbox.store(), 3);
    let id = outbox.enqueue(save("ann")).await.unwrap();
    let worker = Worker::new(outbox.clone(), options(5)).handler("save", saved.handler());
    assert_eq!(drain(&worker, &time).await, (1, 3, 0));
    assert_eq!(saved.count(), 1, "saved exactly once");
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.fence.0), (4, 4));
    assert_eq!(record.last_error.as_deref(), Some("database is locked"));
    assert!(matches!(record.state, EffectState::Done { ref receipt } if receipt == b"saved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_save_always_failing_is_dead_lettered_then_requeued_and_saved_once() {
    let time = PinnedTime::new();
    let outbox = outbox(Some(&time)).await;
    let saved = Saved::failing(outbox.store(), usize::MAX);
    let id = outbox.enqueue(save("bob")).await.unwrap();
    let worker = Worker::new(outbox.clone(), options(4)).handler("save", saved.handler());
    assert_eq!(drain(&worker, &time).await, (0, 3, 1));
    let dead = outbox.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (id, 4));
    assert_eq!(dead[0].last_error.as_deref(), Some("database is locked"));
    assert_eq!(outbox.stats().await.unwrap().dead, 1);
    assert_eq!(saved.count(), 0);

    saved.failures_left.store(0, Ordering::SeqCst); // the fault is fixed
    assert!(outbox.requeue(id).await.unwrap());
    assert!(
        !outbox.requeue(id).await.unwrap(),
        "only a dead letter is re-queued"
    );
    let requeued = outbox.read(id).await.unwrap().unwrap();
    assert_eq!(requeued.attempts, 0, "a fresh attempt count");
    assert_eq!(drain(&worker, &time).await, (1, 0, 0));
    assert_eq!(saved.count(), 1);
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.fence.0), (1, 5));
    assert!(outbox.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_a_worker_stalled_past_its_lease_is_fenced_and_the_save_applied_once() {
    let time = PinnedTime::new();
    let outbox = outbox(Some(&time)).await;
    let id = outbox.enqueue(save("cid")).await.unwrap();
    let saved = Saved::failing(outbox.store(), 0);
    // Worker A stalls inside its handler until the gate opens.
    let (gate, entered) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    let stalled = {
        let (saved, gate, entered) = (saved.clone(), Arc::clone(&gate), Arc::clone(&entered));
        move |effect: Effect, _attempt: u32| {
            let (saved, gate, entered) = (saved.clone(), Arc::clone(&gate), Arc::clone(&entered));
            async move {
                entered.add_permits(1);
                gate.acquire().await.unwrap().forget();
                saved.save(effect).await
            }
        }
    };
    let a = Worker::new(outbox.clone(), options(5)).handler("save", stalled);
    let b = Worker::new(outbox.clone(), options(5)).handler("save", saved.handler());
    let a_batch = tokio::spawn(async move { a.run_batch().await.unwrap() });
    entered.acquire().await.unwrap().forget();
    time.advance(Duration::from_secs(10)); // A's lease runs out on the store's clock
    let b_batch = b.run_batch().await.unwrap();
    assert_eq!(
        (b_batch.claimed, b_batch.done),
        (1, 1),
        "B took the effect over"
    );
    gate.add_permits(1); // A wakes up and reports "done"
    let a_batch = a_batch.await.unwrap();
    assert_eq!((a_batch.claimed, a_batch.done, a_batch.fenced), (1, 0, 1));
    assert_eq!(
        saved.count(),
        1,
        "applied once: A's attempt replayed B's by the key"
    );
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.fence.0), (2, 2));
    assert!(matches!(record.state, EffectState::Done { .. }));
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
    complete_all_fences_each_completion(&outbox(None).await).await;
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
