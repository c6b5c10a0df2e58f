//! The outbox conformance cases ([`outbox_conformance!`](crate::outbox_conformance)): the S4
//! scenarios every [`Outbox`] backend runs unchanged, through the trait only.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Barrier, Semaphore};
use tollgate::clock::{Clock, ManualClock};
use tollgate::once::{Failure, Fingerprint, MemoryStore, Once};
use tollgate::outbox::{
    Applied, Completion, Effect, EffectState, Handler, HandlerError, MemoryOutbox, Outbox, Worker,
    WorkerOptions,
};
use tollgate::store::{Key, LeaseTiming, Owner, Settle};

use crate::release_together;

/// One outbox of a backend under test, fresh for each case: handles onto its effects, and a
/// way to move **the store's** clock (as [`crate::Backend`] is for exactly-once stores).
pub trait OutboxBackend: Send + Sync + 'static {
    /// The outbox type.
    type Outbox: Outbox + Clone;

    /// A handle onto this outbox's effects (an embedded store: a new connection; a server: a
    /// new pool). Every handle sees the same effects and the same time.
    fn connect(&self) -> impl Future<Output = Self::Outbox> + Send;

    /// Moves the store's time forward by `by`.
    fn advance(&self, by: Duration) -> impl Future<Output = ()> + Send;
}

/// The in-memory backend: one [`MemoryOutbox`] on a [`ManualClock`]; handles are clones.
#[derive(Clone, Debug)]
pub struct MemoryOutboxBackend {
    outbox: MemoryOutbox,
    clock: ManualClock,
}

impl MemoryOutboxBackend {
    /// A fresh, empty outbox.
    pub fn new() -> Self {
        let clock = ManualClock::new();
        MemoryOutboxBackend {
            outbox: MemoryOutbox::with_clock(Clock::Manual(clock.clone())),
            clock,
        }
    }
}

impl Default for MemoryOutboxBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboxBackend for MemoryOutboxBackend {
    type Outbox = MemoryOutbox;

    async fn connect(&self) -> MemoryOutbox {
        self.outbox.clone()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// The effect every case enqueues: a save of `user`'s questions, keyed by the user.
fn save(user: &str) -> Effect {
    Effect::new("save", Key::new("questions", user), &user).unwrap()
}

/// The lease of the cases' workers: 10 s, renewed every 5 s (never within a case).
fn options(max_attempts: u32, batch: usize) -> WorkerOptions {
    WorkerOptions {
        max_attempts,
        batch,
        lease: LeaseTiming::new(Duration::from_secs(10), Duration::from_secs(5)),
        ..WorkerOptions::default()
    }
}

/// The save the handlers perform: fails while failures are left, then applies the effect
/// exactly once per key with [`Once`] (in memory: the handler's own idempotency is not the
/// backend under test).
#[derive(Clone)]
struct Saved {
    applied: Arc<AtomicUsize>,
    failures_left: Arc<AtomicUsize>,
    once: Arc<Once<MemoryStore>>,
}

impl Saved {
    fn failing(times: usize) -> Self {
        Saved {
            applied: Arc::default(),
            failures_left: Arc::new(AtomicUsize::new(times)),
            once: Arc::new(Once::new(MemoryStore::new())),
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

/// Runs batches until nothing is pending or in flight; when a retry waits in its backoff (at
/// most the default 60 s), moves the store's time past it instead of sleeping. Returns
/// (done, retried, dead-lettered).
async fn drain<B: OutboxBackend>(backend: &B, worker: &Worker<B::Outbox>) -> (usize, usize, usize) {
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
            backend.advance(Duration::from_secs(61)).await;
        }
    }
}

/// A save failing three times is retried with exact attempt counts and saved exactly once.
pub async fn outbox_save_failing_three_times_is_retried_and_saved_exactly_once<B: OutboxBackend>(
    backend: &B,
) {
    let outbox = backend.connect().await;
    let saved = Saved::failing(3);
    let id = outbox.enqueue(save("ann")).await.unwrap();
    let worker = Worker::new(outbox.clone(), options(5, 16)).handler("save", saved.handler());
    assert_eq!(drain(backend, &worker).await, (1, 3, 0));
    assert_eq!(saved.count(), 1, "saved exactly once");
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.fence.0), (4, 4));
    assert_eq!(record.last_error.as_deref(), Some("database is locked"));
    assert!(matches!(record.state, EffectState::Done { ref receipt } if receipt == b"saved"));
}

/// A save that always fails is dead-lettered with its last error after its last attempt, then
/// re-queued with a fresh attempt count and saved once.
pub async fn outbox_save_always_failing_is_dead_lettered_then_requeued_and_saved_once<
    B: OutboxBackend,
>(
    backend: &B,
) {
    let outbox = backend.connect().await;
    let saved = Saved::failing(usize::MAX);
    let id = outbox.enqueue(save("bob")).await.unwrap();
    let worker = Worker::new(outbox.clone(), options(4, 16)).handler("save", saved.handler());
    assert_eq!(drain(backend, &worker).await, (0, 3, 1));
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
    assert_eq!(outbox.read(id).await.unwrap().unwrap().attempts, 0);
    assert_eq!(drain(backend, &worker).await, (1, 0, 0));
    assert_eq!(saved.count(), 1);
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.fence.0), (1, 5));
    assert!(outbox.dead_letters(10).await.unwrap().is_empty());
}

/// An effect whose attempts all end without an outcome (each claimed by a worker that then
/// crashed: its lease runs out, nothing is settled) is dead-lettered by the claim after the
/// last allowed attempt, without being applied again; a handler that panics while making its
/// future is dead-lettered at its first attempt.
pub async fn outbox_an_effect_whose_workers_keep_crashing_is_dead_lettered_after_its_last_attempt<
    B: OutboxBackend,
>(
    backend: &B,
) {
    const MAX: u32 = 3;
    let outbox = backend.connect().await;
    let id = outbox.enqueue(save("dan")).await.unwrap();
    for crashed in 1..=MAX {
        let claimed = outbox
            .claim(Owner::random(), Duration::from_secs(10), 16)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!((claimed[0].id, claimed[0].attempt), (id, crashed));
        backend.advance(Duration::from_secs(11)).await; // the crashed worker's lease runs out
    }
    let saved = Saved::failing(0);
    let worker = Worker::new(outbox.clone(), options(MAX, 16)).handler("save", saved.handler());
    let batch = worker.run_batch().await.unwrap();
    assert_eq!((batch.claimed, batch.done, batch.dead_lettered), (1, 0, 1));
    assert_eq!(saved.count(), 0, "not applied a fourth time");
    let dead = outbox.dead_letters(10).await.unwrap();
    assert_eq!((dead.len(), dead[0].id, dead[0].attempts), (1, id, MAX + 1));
    let error = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("3 attempts ended without an outcome"),
        "{error}"
    );

    let id = outbox.enqueue(save("eve")).await.unwrap();
    let panicking = |_effect: Effect, _attempt: u32| -> Applied { panic!("no connection") };
    let worker = Worker::new(outbox.clone(), options(MAX, 16)).handler("save", panicking);
    let batch = worker.run_batch().await.unwrap();
    assert_eq!((batch.claimed, batch.dead_lettered), (1, 1));
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!(record.attempts, 1);
    assert!(matches!(record.state, EffectState::Dead));
    let error = record.last_error.unwrap_or_default();
    assert!(error.contains("no connection"), "{error}");
}

/// A handler that meets `entered`, then waits for a permit of `gate` before it saves: the
/// test decides when its attempt reports.
fn stalled(saved: &Saved, entered: &Arc<Barrier>, gate: &Arc<Semaphore>) -> impl Handler {
    let (saved, entered, gate) = (saved.clone(), Arc::clone(entered), Arc::clone(gate));
    move |effect: Effect, _attempt: u32| {
        let (saved, entered, gate) = (saved.clone(), Arc::clone(&entered), Arc::clone(&gate));
        async move {
            entered.wait().await;
            gate.acquire().await.unwrap().forget();
            saved.save(effect).await
        }
    }
}

/// A worker stalled in its handler past its lease is taken over; its late "done" is fenced
/// and the save applied once (the stalled attempt replays the other's by the key).
pub async fn outbox_a_worker_stalled_past_its_lease_is_fenced_and_the_save_applied_once<
    B: OutboxBackend,
>(
    backend: &B,
) {
    let outbox = backend.connect().await;
    let id = outbox.enqueue(save("cid")).await.unwrap();
    let saved = Saved::failing(0);
    let (entered, gate) = (Arc::new(Barrier::new(2)), Arc::new(Semaphore::new(0)));
    let stalled = stalled(&saved, &entered, &gate);
    let a = Worker::new(outbox.clone(), options(5, 16)).handler("save", stalled);
    let b = Worker::new(outbox.clone(), options(5, 16)).handler("save", saved.handler());
    let a_batch = tokio::spawn(async move { a.run_batch().await.unwrap() });
    entered.wait().await; // A is inside its handler
    backend.advance(Duration::from_secs(10)).await; // A's lease runs out on the store's clock
    let b_batch = b.run_batch().await.unwrap();
    assert_eq!((b_batch.claimed, b_batch.done), (1, 1), "B took it over");
    gate.add_permits(1); // A wakes up and reports "done"
    let a_batch = a_batch.await.unwrap();
    assert_eq!((a_batch.claimed, a_batch.done, a_batch.fenced), (1, 0, 1));
    assert_eq!(saved.count(), 1, "applied once");
    let record = outbox.read(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.fence.0), (2, 2));
    assert!(matches!(record.state, EffectState::Done { .. }));
}

/// A batch of four whose oldest effect was taken over while its handlers ran: the other
/// three are completed, that one alone is fenced, each applied once.
pub async fn outbox_a_batch_with_one_effect_taken_over_completes_the_rest_and_fences_that_one<
    B: OutboxBackend,
>(
    backend: &B,
) {
    let outbox = backend.connect().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(outbox.enqueue(save(&format!("u{i}"))).await.unwrap());
    }
    let saved = Saved::failing(0);
    let (entered, gate) = (Arc::new(Barrier::new(5)), Arc::new(Semaphore::new(0)));
    let stalled = stalled(&saved, &entered, &gate);
    let a = Worker::new(outbox.clone(), options(5, 4)).handler("save", stalled);
    let b = Worker::new(outbox.clone(), options(5, 1)).handler("save", saved.handler());
    let a_batch = tokio::spawn(async move { a.run_batch().await.unwrap() });
    entered.wait().await; // A holds all four, inside their handlers
    backend.advance(Duration::from_secs(10)).await;
    let b_batch = b.run_batch().await.unwrap();
    assert_eq!((b_batch.claimed, b_batch.done), (1, 1), "B took u0 over");
    gate.add_permits(4);
    let a_batch = a_batch.await.unwrap();
    assert_eq!(
        (a_batch.claimed, a_batch.done, a_batch.fenced),
        (4, 3, 1),
        "only the effect taken over is fenced"
    );
    assert_eq!(saved.count(), 4, "each effect applied once");
    for (i, id) in ids.iter().enumerate() {
        let record = outbox.read(*id).await.unwrap().unwrap();
        let expected = if i == 0 { (2, 2) } else { (1, 1) };
        assert_eq!((record.attempts, record.fence.0), expected, "u{i}");
        assert!(matches!(record.state, EffectState::Done { .. }), "u{i}");
    }
}

/// [`Outbox::complete_all`] answers each completion on its own: three effects claimed by A
/// with a zero lease, the oldest taken over by B — A's batch is fenced for that one only, a
/// repeated completion is accepted once, and B's completion lands.
pub async fn outbox_complete_all_fences_each_completion_by_its_own_token<B: OutboxBackend>(
    backend: &B,
) {
    let outbox = backend.connect().await;
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
    done.push(done[1].clone()); // the same completion twice: accepted once
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

/// Eight workers, each on a handle of its own, released together over 200 effects: each
/// effect is claimed and applied exactly once, with one attempt.
pub async fn outbox_eight_workers_on_their_own_handles_apply_200_effects_once_each<
    B: OutboxBackend,
>(
    backend: &B,
) {
    let outbox = backend.connect().await;
    for i in 0..200 {
        outbox.enqueue(save(&format!("u{i}"))).await.unwrap();
    }
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let seen = Arc::clone(&seen);
        let handler = move |effect: Effect, _| {
            let seen = Arc::clone(&seen);
            async move {
                let key = effect.key.key().to_owned();
                *seen.lock().unwrap().entry(key).or_default() += 1;
                Ok(effect.payload)
            }
        };
        let own = backend.connect().await;
        workers.push(Worker::new(own, options(5, 8)).handler("save", handler));
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
    assert_eq!(done.iter().map(|d| d.0).sum::<usize>(), 200, "claimed once");
    assert_eq!(done.iter().map(|d| d.1).sum::<usize>(), 200);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 200);
    assert!(
        seen.values().all(|n| *n == 1),
        "each applied once: {seen:?}"
    );
    let stats = outbox.stats().await.unwrap();
    assert_eq!(
        (stats.done, stats.pending, stats.in_flight, stats.dead),
        (200, 0, 0, 0)
    );
    assert_eq!(stats.oldest_unapplied, None);
}
