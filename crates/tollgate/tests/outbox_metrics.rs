//! The outbox reports every effect's fate through the `metrics` facade:
//! `tollgate_outbox_effects_total{kind, outcome}` for enqueued, done, retried, dead-lettered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tollgate::outbox::{Effect, HandlerError, MemoryOutbox, Outbox, Worker, WorkerOptions};
use tollgate::store::Key;

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
