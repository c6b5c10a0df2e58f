//! Engine-level cases: [`Once::run`] over a backend, in real time (no paused clock, so a
//! backend with its own I/O thread behaves as in production).

use std::time::Duration;

use tokio::sync::oneshot;
use tollgate::once::{
    Error, Failure, Fingerprint, Key, OnCompleted, OnInProgress, Once, Output, Store,
};

use crate::counting::Counting;

fn key() -> Key {
    Key::new("engine", "user-1/2026-11-21")
}

async fn answer<T>(value: T) -> Result<T, Failure<String>> {
    Ok(value)
}

/// Replay, reject, mismatch, retryable and permanent failures through the engine.
pub async fn run_replays_rejects_and_stores_failures<S: Store + Clone>(store: S) {
    let once = Once::new(store.clone());
    let ran = once
        .run(key(), Fingerprint::new("a"), || answer(1_u8))
        .await;
    let fresh = Output {
        value: 1,
        replayed: false,
    };
    assert_eq!(ran, Ok(fresh));
    let again = once
        .run(key(), Fingerprint::new("a"), || answer(2_u8))
        .await;
    let replayed = Output {
        value: 1,
        replayed: true,
    };
    assert_eq!(again, Ok(replayed));
    let strict = Once::builder(store)
        .on_completed(OnCompleted::Reject)
        .build();
    let rejected = strict.run(key(), Fingerprint::new("a"), || answer(3_u8));
    assert_eq!(rejected.await, Err(Error::AlreadyDone));
    let other = once.run(key(), Fingerprint::new("b"), || answer(4_u8));
    assert_eq!(other.await, Err(Error::Mismatch));

    let failing = Key::new("engine", "failing");
    let busy = Failure::retryable("503".to_string());
    let first = once.run(failing.clone(), Fingerprint::new("a"), {
        let busy = busy.clone();
        || async move { Err::<u8, _>(busy) }
    });
    assert_eq!(first.await, Err(Error::Failed(busy)));
    let bad = Failure::permanent("400".to_string());
    let second = once.run(failing.clone(), Fingerprint::new("a"), {
        let bad = bad.clone();
        || async move { Err::<u8, _>(bad) }
    });
    assert_eq!(second.await, Err(Error::Failed(bad.clone())));
    let third = once.run(failing.clone(), Fingerprint::new("a"), || answer(5_u8));
    assert_eq!(third.await, Err(Error::Failed(bad)), "stored, not re-run");
    let record = once.store().read(&failing).await.unwrap().unwrap();
    assert_eq!(
        record.fence.0, 2,
        "the retryable failure freed the key once"
    );
}

/// A waiter in another engine (another connection or process) polls the store until the
/// holder completes, then receives the stored result: the holder completes only after the
/// waiter has polled twice.
pub async fn wait_mode_polls_a_holder_in_another_engine<S: Store + Clone>(holder: S, waiter: S) {
    let holder = Once::new(holder);
    let polled = Counting::new(waiter);
    let wait = OnInProgress::Wait {
        deadline: Duration::from_secs(30),
    };
    let waiter = Once::builder(polled.clone()).on_in_progress(wait).build();
    let (started, has_started) = oneshot::channel();
    let held = tokio::spawn({
        let polled = polled.clone();
        async move {
            let work = move || async move {
                let _ = started.send(());
                polled.answered(2).await; // the waiter found the key in progress twice
                Ok::<_, Failure<String>>("from the holder".to_string())
            };
            holder.run(key(), Fingerprint::new("a"), work).await
        }
    });
    has_started.await.unwrap();
    let waited = waiter.run(key(), Fingerprint::new("a"), || {
        answer("from the waiter".to_string())
    });
    let expected = Output {
        value: "from the holder".to_string(),
        replayed: true,
    };
    assert_eq!(waited.await, Ok(expected));
    assert!(polled.claims() >= 3, "in progress twice, then completed");
    assert!(!held.await.unwrap().unwrap().replayed);
}
