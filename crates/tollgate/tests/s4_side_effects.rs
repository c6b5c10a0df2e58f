//! S4 at library level: a side job never breaks the main job, and a side effect is never
//! silently lost — it is retried from the outbox, dead-lettered with its error after its last
//! attempt, applied once by its idempotency key even when a stalled worker wakes up, and
//! drained (or handed to the outbox) at shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tollgate::once::{Failure, Fingerprint, MemoryStore, Once};
use tollgate::outbox::{
    Effect, EffectState, HandlerError, MemoryOutbox, Outbox, Worker, WorkerOptions,
};
use tollgate::side::{Drained, SideOptions, SideTasks, Spawned};
use tollgate::store::Key;
use tollgate_testkit::MemoryOutboxBackend;

/// The "database" the save writes to: questions per user, applied once per effect key.
#[derive(Clone)]
struct Saved {
    rows: Arc<Mutex<HashMap<String, Vec<String>>>>,
    applied: Arc<AtomicUsize>,
    failures_left: Arc<AtomicUsize>,
    once: Arc<Once<MemoryStore>>,
}

impl Saved {
    fn failing(times: usize) -> Self {
        let saved = Saved {
            rows: Arc::default(),
            applied: Arc::default(),
            failures_left: Arc::default(),
            once: Arc::new(Once::new(MemoryStore::new())),
        };
        saved.failures_left.store(times, Ordering::SeqCst);
        saved
    }

    /// The handler: fails while failures are left, then saves — exactly once per effect key.
    fn handler(&self) -> impl Fn(Effect, u32) -> tollgate::outbox::Applied + Send + Sync + 'static {
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
        let (user, questions): (String, Vec<String>) = effect.payload().unwrap();
        let (rows, applied) = (Arc::clone(&self.rows), Arc::clone(&self.applied));
        let write = move || async move {
            applied.fetch_add(1, Ordering::SeqCst);
            rows.lock().unwrap().insert(user, questions);
            Ok::<_, Failure<String>>("saved".to_string())
        };
        let done = self
            .once
            .run(effect.key.clone(), Fingerprint::new("v1"), write)
            .await;
        done.map(|o| o.value.into_bytes())
            .map_err(|e| HandlerError::retryable(e.to_string()))
    }

    fn count(&self) -> usize {
        self.applied.load(Ordering::SeqCst)
    }
}

fn questions(user: &str, n: usize) -> Effect {
    let payload = (user.to_owned(), vec!["why this role?".to_owned(); n]);
    Effect::new("save-questions", Key::new("questions", user), &payload).unwrap()
}

fn options(max_attempts: u32) -> WorkerOptions {
    WorkerOptions {
        max_attempts,
        ..WorkerOptions::default()
    }
}

/// Runs batches (sleeping on tokio's paused clock through backoffs) until nothing is pending.
async fn drain<S: Outbox>(worker: &Worker<S>) -> (usize, usize, usize) {
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
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn s4_save_failing_three_times_is_retried_and_saved_exactly_once() {
    let outbox = MemoryOutbox::new();
    let saved = Saved::failing(3);
    let id = outbox.enqueue(questions("ann", 5)).await.unwrap();
    let worker = Worker::new(outbox.clone(), options(5)).handler("save-questions", saved.handler());
    let (done, retried, dead) = drain(&worker).await;
    assert_eq!((done, retried, dead), (1, 3, 0));
    assert_eq!(saved.count(), 1, "saved exactly once");
    assert_eq!(saved.rows.lock().unwrap()["ann"].len(), 5);
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!(record.attempts, 4);
    assert!(matches!(record.state, EffectState::Done { ref receipt } if receipt == b"saved"));
}

/// `max_attempts: 0` still makes one attempt (the worker never dead-letters an effect it has
/// not tried).
#[tokio::test(start_paused = true)]
async fn s4_max_attempts_of_zero_still_applies_each_effect_once() {
    let outbox = MemoryOutbox::new();
    let saved = Saved::failing(0);
    let id = outbox.enqueue(questions("zed", 1)).await.unwrap();
    let worker = Worker::new(outbox.clone(), options(0)).handler("save-questions", saved.handler());
    assert_eq!(drain(&worker).await, (1, 0, 0));
    assert_eq!(saved.count(), 1);
    let record = outbox.read(id).await.unwrap().unwrap();
    assert!(matches!(record.state, EffectState::Done { .. }));
}

#[tokio::test(start_paused = true)]
async fn s4_save_always_failing_is_dead_lettered_then_requeued_and_saved_once() {
    let outbox = MemoryOutbox::new();
    let saved = Saved::failing(usize::MAX);
    let id = outbox.enqueue(questions("bob", 3)).await.unwrap();
    let worker = Worker::new(outbox.clone(), options(4)).handler("save-questions", saved.handler());
    assert_eq!(drain(&worker).await, (0, 3, 1));
    let dead = outbox.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (id, 4));
    assert_eq!(dead[0].last_error.as_deref(), Some("database is locked"));
    assert_eq!(saved.count(), 0);

    saved.failures_left.store(0, Ordering::SeqCst); // the fault is fixed
    assert!(outbox.requeue(id).await.unwrap());
    assert!(
        !outbox.requeue(id).await.unwrap(),
        "only a dead letter is re-queued"
    );
    assert_eq!(drain(&worker).await, (1, 0, 0));
    assert_eq!(saved.count(), 1);
    assert!(outbox.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s4_shutdown_with_100_effects_in_flight_loses_none() {
    let outbox = MemoryOutbox::new();
    let side = SideTasks::with_outbox(SideOptions::default(), outbox.clone());
    let finished = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    for i in 0..100 {
        let (finished, gate) = (Arc::clone(&finished), Arc::clone(&gate));
        let spawned = side.spawn_effect(
            "save-questions",
            questions(&format!("u{i}"), 1),
            move |_| async move {
                // Half of them finish at once; the other half wait on a gate never opened.
                if i % 2 == 0 {
                    finished.fetch_add(1, Ordering::SeqCst);
                    return Ok::<(), String>(());
                }
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
                Ok(())
            },
        );
        assert_eq!(spawned, Spawned::Accepted);
    }
    // Wait until the supervisor has counted the 50 fast ones and only the 50 gated ones are
    // left in flight (they hold at most 50 of the 64 slots, so every fast one gets a slot).
    // Only then shut down: whatever its deadline, the split is 50 finished, 50 to the outbox.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while side.in_flight() != 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fast effects did not finish: {} in flight",
            side.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(finished.load(Ordering::SeqCst), 50);
    let drained = side.shutdown(Duration::from_millis(10)).await;
    let expected = Drained {
        ok: 50,
        to_outbox: 50,
        ..Drained::default()
    };
    assert_eq!(drained, expected, "none failed, aborted or refused");
    assert_eq!(side.in_flight(), 0);
    let stats = outbox.stats().await.unwrap();
    assert_eq!(
        stats.pending, 50,
        "every unfinished effect is in the outbox"
    );
    let refused = side.spawn("late", "x", async { Ok::<(), String>(()) });
    assert_eq!(refused, Spawned::Refused, "no task is taken after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s4_failing_and_panicking_side_tasks_never_reach_the_caller_and_are_counted() {
    // Room for all 300 at once: they start together behind one gate.
    let opts = SideOptions {
        max_in_flight: 300,
        max_queued: 0,
    };
    let side = SideTasks::new(opts);
    let gate = Arc::new(tokio::sync::Barrier::new(301));
    for i in 0..300 {
        let gate = Arc::clone(&gate);
        let spawned = side.spawn("save-questions", i, async move {
            gate.wait().await;
            match i % 3 {
                0 => Ok(()),
                1 => Err(format!("save {i} failed")),
                _ => panic!("side job bug {i}"),
            }
        });
        assert_eq!(spawned, Spawned::Accepted);
    }
    // The main job goes on while the side tasks run.
    gate.wait().await;
    let drained = side.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        (drained.ok, drained.failed, drained.panicked),
        (100, 100, 100)
    );
    assert_eq!(side.in_flight(), 0);
}

/// A thousand spawners released together against a supervisor with room for six: exactly six
/// are taken (the room is checked and taken in one step), the rest refused; then a thousand
/// more race a shutdown: every task taken before it closed is counted in what it returns, and
/// none is taken after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_side_tasks_racing_for_the_last_places_and_a_shutdown_are_each_counted_once() {
    const SPAWNERS: usize = 1_000;
    let side = SideTasks::new(SideOptions {
        max_in_flight: 2,
        max_queued: 4,
    });
    let gate = Arc::new(Semaphore::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(SPAWNERS));
    let spawners: Vec<_> = (0..SPAWNERS)
        .map(|i| {
            let (side, gate, start) = (side.clone(), Arc::clone(&gate), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                side.spawn("hold", i.to_string(), async move {
                    gate.acquire().await.map_err(|e| e.to_string())?.forget();
                    Ok::<(), String>(())
                })
            })
        })
        .collect();
    let mut taken = 0;
    for spawner in spawners {
        taken += usize::from(spawner.await.unwrap() == Spawned::Accepted);
    }
    assert_eq!(taken, 6, "2 running + 4 queued, never more");
    assert_eq!(side.in_flight(), 6);
    gate.add_permits(6);

    let ran = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(SPAWNERS + 1));
    let racing = SideTasks::new(SideOptions {
        max_in_flight: 64,
        max_queued: SPAWNERS,
    });
    let spawners: Vec<_> = (0..SPAWNERS)
        .map(|i| {
            let (side, ran, start) = (racing.clone(), Arc::clone(&ran), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                side.spawn("count", i.to_string(), async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), String>(())
                })
            })
        })
        .collect();
    start.wait().await;
    let drained = racing.shutdown(Duration::from_secs(30)).await;
    let ran_by_then = ran.load(Ordering::SeqCst);
    let mut accepted = 0;
    for spawner in spawners {
        accepted += usize::from(spawner.await.unwrap() == Spawned::Accepted);
    }
    assert_eq!(
        drained.ok, accepted as u64,
        "each task taken is in the shutdown's tally"
    );
    assert_eq!(
        ran_by_then, accepted,
        "and had run when the shutdown returned"
    );
    assert_eq!(racing.in_flight(), 0);
    let late = racing.spawn("late", "x", async { Ok::<(), String>(()) });
    assert_eq!(late, Spawned::Refused, "closed for good");
    side.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_a_full_supervisor_queues_then_sends_effects_to_the_outbox() {
    let outbox = MemoryOutbox::new();
    let opts = SideOptions {
        max_in_flight: 2,
        max_queued: 3,
    };
    let side = SideTasks::with_outbox(opts, outbox.clone());
    let gate = Arc::new(Semaphore::new(0));
    let mut spawned = Vec::new();
    for i in 0..8 {
        let gate = Arc::clone(&gate);
        spawned.push(side.spawn_effect(
            "save-questions",
            questions(&format!("q{i}"), 1),
            move |_| async move {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
                Ok::<(), String>(())
            },
        ));
    }
    let accepted = spawned.iter().filter(|s| **s == Spawned::Accepted).count();
    let to_outbox = spawned.iter().filter(|s| **s == Spawned::ToOutbox).count();
    assert_eq!(
        (accepted, to_outbox),
        (5, 3),
        "2 running + 3 queued, the rest to the outbox"
    );
    gate.add_permits(5);
    let drained = side.shutdown(Duration::from_secs(10)).await;
    assert_eq!((drained.ok, drained.to_outbox), (5, 3));
    assert_eq!(outbox.stats().await.unwrap().pending, 3);
}

async fn memory() -> MemoryOutboxBackend {
    MemoryOutboxBackend::new()
}

// The outbox conformance suite, as on SQLite and PostgreSQL: a stalled worker fenced, batches
// of completions fenced one by one, retries and dead letters on the store's clock, eight
// workers applying 200 effects once each.
tollgate_testkit::outbox_conformance!(memory);
