//! The outbox reports every effect's fate through the `metrics` facade:
//! `tollgate_outbox_effects_total{kind, outcome}` for enqueued, done, retried, dead-lettered
//! and fenced — per effect, also when a batch of effects is marked done together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::sync::{Barrier, Semaphore};
use tollgate::clock::{Clock, ManualClock};
use tollgate::outbox::{Effect, HandlerError, MemoryOutbox, Outbox, Worker, WorkerOptions};
use tollgate::store::{Key, LeaseTiming};

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

fn counter(snapshot: &Snapshot, outcome: &str) -> u64 {
    snapshot
        .iter()
        .find_map(|(key, _, _, value)| {
            let k = key.key();
            let found = k.name() == "tollgate_outbox_effects_total"
                && k.labels().any(|l| l.key() == "kind" && l.value() == "save")
                && k.labels()
                    .any(|l| l.key() == "outcome" && l.value() == outcome);
            match (found, value) {
                (true, DebugValue::Counter(n)) => Some(*n),
                _ => None,
            }
        })
        .unwrap_or(0)
}

#[test]
fn effects_are_counted_enqueued_done_retried_and_dead_lettered() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let outbox = MemoryOutbox::new();
            for name in ["ok", "flaky", "bad"] {
                let effect = Effect::new("save", Key::new("t", name), &name).unwrap();
                outbox.enqueue(effect).await.unwrap();
            }
            let failed_once = Arc::new(AtomicBool::new(false));
            let options = WorkerOptions {
                max_attempts: 3,
                ..WorkerOptions::default()
            };
            let worker =
                Worker::new(outbox.clone(), options).handler("save", move |e: Effect, _| {
                    let failed_once = Arc::clone(&failed_once);
                    async move {
                        match e.key.key() {
                            "bad" => Err(HandlerError::permanent("malformed")),
                            "flaky" if !failed_once.swap(true, Ordering::SeqCst) => {
                                Err(HandlerError::retryable("busy")
                                    .retry_after(Duration::from_secs(1)))
                            }
                            _ => Ok(Vec::new()),
                        }
                    }
                });
            let first = worker.run_batch().await.unwrap();
            assert_eq!((first.done, first.retried, first.dead_lettered), (1, 1, 1));
            let early = worker.run_batch().await.unwrap();
            assert_eq!(early.claimed, 0, "the retry honours its Retry-After");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let second = worker.run_batch().await.unwrap();
            assert_eq!((second.claimed, second.done), (1, 1));
        });
    });
    // A snapshot drains the recorder: take one, then look every counter up in it.
    let snapshot = recorder.snapshotter().snapshot().into_vec();
    let counts = ["enqueued", "done", "retried", "dead_lettered"].map(|o| counter(&snapshot, o));
    assert_eq!(counts, [3, 2, 1, 1]);
}

#[test]
fn a_batch_completed_together_is_still_counted_per_effect() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        // The local recorder sees this thread only: a current-thread runtime, real time.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let clock = ManualClock::new();
            let outbox = MemoryOutbox::with_clock(Clock::Manual(clock.clone()));
            for name in ["u0", "u1", "u2"] {
                let effect = Effect::new("save", Key::new("t", name), &name).unwrap();
                outbox.enqueue(effect).await.unwrap();
            }
            // A's three handlers wait inside until the gate opens; B takes u0 over meanwhile.
            let (entered, gate) = (Arc::new(Barrier::new(4)), Arc::new(Semaphore::new(0)));
            let stalled = {
                let (entered, gate) = (Arc::clone(&entered), Arc::clone(&gate));
                move |_: Effect, _| {
                    let (entered, gate) = (Arc::clone(&entered), Arc::clone(&gate));
                    async move {
                        entered.wait().await;
                        gate.acquire().await.unwrap().forget();
                        Ok(Vec::new())
                    }
                }
            };
            let lease = LeaseTiming::new(Duration::from_secs(10), Duration::from_secs(5));
            let (a, b) = (
                WorkerOptions {
                    lease,
                    ..WorkerOptions::default()
                },
                WorkerOptions {
                    lease,
                    batch: 1,
                    ..WorkerOptions::default()
                },
            );
            let a = Worker::new(outbox.clone(), a).handler("save", stalled);
            let noop = |_: Effect, _| async { Ok(Vec::new()) };
            let b = Worker::new(outbox.clone(), b).handler("save", noop);
            let a_batch = tokio::spawn(async move { a.run_batch().await.unwrap() });
            entered.wait().await;
            clock.advance(Duration::from_secs(10));
            assert_eq!(b.run_batch().await.unwrap().done, 1);
            gate.add_permits(3);
            let a_batch = a_batch.await.unwrap();
            assert_eq!((a_batch.done, a_batch.fenced), (2, 1));
        });
    });
    let snapshot = recorder.snapshotter().snapshot().into_vec();
    let counts = ["enqueued", "done", "fenced"].map(|o| counter(&snapshot, o));
    assert_eq!(counts, [3, 3, 1]);
}
