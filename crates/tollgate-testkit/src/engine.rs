//! Engine-level cases: [`Once`] over a backend, in real time (no paused clock, so a backend
//! with its own I/O thread behaves as in production); the store's clock is moved by the
//! [`Backend`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tollgate::clock::{Clock, ManualClock};
use tollgate::once::{
    ClaimOutcome, Error, Failure, Fingerprint, Key, OnCompleted, OnExpired, OnInProgress,
    OnUnknown, Once, Output, Reconciled, RecordState, SettleError, Settlement, Store, Token,
};

use crate::backend::Backend;
use crate::cases::{LEASE, request};
use crate::counting::Counting;
use crate::gate::release_together;

fn key() -> Key {
    Key::new("engine", "user-1/2026-11-21")
}

async fn answer<T>(value: T) -> Result<T, Failure<String>> {
    Ok(value)
}

/// Replay, reject, mismatch, retryable and permanent failures through the engine.
pub async fn run_replays_rejects_and_stores_failures<B: Backend>(backend: &B) {
    let store = backend.connect().await;
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
pub async fn wait_mode_polls_a_holder_in_another_engine<B: Backend>(backend: &B) {
    let holder = Once::new(backend.connect().await);
    let polled = Counting::new(backend.connect().await);
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

/// A waiter in another engine receives the failure of the attempt it waited for — a
/// retryable one too, which frees the key — instead of running the work a second time.
pub async fn wait_mode_waiter_receives_the_holders_own_failure<B: Backend>(backend: &B) {
    let holder = Once::new(backend.connect().await);
    let polled = Counting::new(backend.connect().await);
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
                polled.answered(1).await; // the waiter found the key in progress
                Err::<String, _>(Failure::retryable("llm returned 503".to_string()))
            };
            holder.run(key(), Fingerprint::new("a"), work).await
        }
    });
    has_started.await.unwrap();
    let waiter_ran = Arc::new(AtomicUsize::new(0));
    let ran = Arc::clone(&waiter_ran);
    let waited = waiter.run(key(), Fingerprint::new("a"), move || {
        ran.fetch_add(1, Ordering::SeqCst);
        answer("from the waiter".to_string())
    });
    let its_failure = Error::Failed(Failure::retryable("llm returned 503".to_string()));
    assert_eq!(waited.await, Err(its_failure.clone()));
    assert_eq!(held.await.unwrap(), Err(its_failure));
    assert_eq!(
        waiter_ran.load(Ordering::SeqCst),
        0,
        "the waiter did not pay again"
    );
}

/// Two engines whose own clocks disagree by 10 s share one store: neither takes over the
/// other's live lease (a vanished holder's, here), and the lease is taken over exactly when
/// the store's clock reaches its end — whatever either engine's clock says.
pub async fn clock_skew_of_engines_never_takes_over_a_live_lease<B: Backend>(backend: &B) {
    let skew = Duration::from_secs(10);
    let (ahead, behind) = (ManualClock::new(), ManualClock::new());
    ahead.advance(skew);
    let mut built = Vec::new();
    for clock in [ahead, behind] {
        let engine = Once::builder(backend.connect().await)
            .clock(Clock::Manual(clock))
            .lease(LEASE, LEASE / 4)
            .on_unknown(OnUnknown::Rerun)
            .build();
        built.push(engine);
    }
    let vanished = vanished_holder(backend).await;
    let paid = Arc::new(AtomicUsize::new(0));
    for once in &built {
        let outcome = once
            .run(key(), Fingerprint::new("a"), pay(&paid, "skewed"))
            .await;
        assert_eq!(
            outcome,
            Err(Error::Conflict),
            "a live lease is not taken over"
        );
    }
    backend.advance(LEASE - Duration::from_millis(1)).await;
    for once in &built {
        let outcome = once
            .run(key(), Fingerprint::new("a"), pay(&paid, "skewed"))
            .await;
        assert_eq!(
            outcome,
            Err(Error::Conflict),
            "1 ms before the store's expiry"
        );
    }
    backend.advance(Duration::from_millis(1)).await;
    let taken = built[0].run(key(), Fingerprint::new("a"), pay(&paid, "taken over"));
    let fresh = Output {
        value: "taken over".to_string(),
        replayed: false,
    };
    assert_eq!(taken.await, Ok(fresh));
    assert_eq!(
        paid.load(Ordering::SeqCst),
        1,
        "paid once, after the store's expiry"
    );
    let record = built[1].store().read(&key()).await.unwrap().unwrap();
    assert_eq!(record.fence.0, vanished.fence.0 + 1);
}

/// An attempt of unknown outcome is never re-run before the call's reconcile hook is asked;
/// a hook answering `Done` settles the key with the result it read back, and every later
/// call replays it without running the work.
pub async fn reconcile_hook_done_settles_the_key_without_rerunning<B: Backend>(backend: &B) {
    let once = Once::builder(backend.connect().await)
        .on_unknown(OnUnknown::Rerun)
        .build();
    vanished_holder(backend).await;
    backend.advance(LEASE).await;
    let (paid, asked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let hook = {
        let asked = Arc::clone(&asked);
        move |k: Key| async move {
            assert_eq!(k, key());
            asked.fetch_add(1, Ordering::SeqCst);
            Reconciled::Done("found in the report table".to_string())
        }
    };
    let reconciled = once
        .call(key(), Fingerprint::new("a"))
        .reconcile(hook)
        .run(pay(&paid, "paid twice"));
    let found = Output {
        value: "found in the report table".to_string(),
        replayed: true,
    };
    assert_eq!(reconciled.await, Ok(found.clone()));
    let later = once.run(key(), Fingerprint::new("a"), pay(&paid, "paid twice"));
    assert_eq!(later.await, Ok(found));
    assert_eq!(
        (asked.load(Ordering::SeqCst), paid.load(Ordering::SeqCst)),
        (1, 0)
    );
    let record = once.store().read(&key()).await.unwrap().unwrap();
    assert!(matches!(record.state, RecordState::Completed { .. }));
    assert_eq!(record.fence.0, 1, "settled, not taken over");
}

/// Many calls — in separate engines, as in separate processes — find one attempt of unknown
/// outcome at once and their hooks all say `RunAgain`: the work runs again exactly once
/// (taken over with fence 2), every other call gets `Conflict`; a hook saying `LeaveUnknown`
/// leaves the key unknown.
pub async fn reconcile_run_again_reruns_exactly_once_under_a_race<B: Backend>(backend: &B) {
    const CALLS: usize = 100;
    let vanished = vanished_holder(backend).await;
    backend.advance(LEASE).await;
    let left = Once::new(backend.connect().await);
    let leave = left
        .call(key(), Fingerprint::new("a"))
        .reconcile(|_| async { Reconciled::<String>::LeaveUnknown })
        .run(|| answer("never".to_string()));
    assert_eq!(leave.await, Err(Error::OutcomeUnknown));
    let mut engines = Vec::new();
    for _ in 0..CALLS {
        engines.push(Once::new(backend.connect().await));
    }
    let engines = Arc::new(engines);
    let paid = Arc::new(AtomicUsize::new(0));
    let (answered, answers) = tokio::sync::watch::channel(0usize);
    let answered = Arc::new(answered);
    let outcomes = release_together(CALLS, |i| {
        let (engines, paid) = (Arc::clone(&engines), Arc::clone(&paid));
        let (answered, mut answers) = (Arc::clone(&answered), answers.clone());
        async move {
            // The rerun finishes only once every other call has answered, so no call can
            // hide behind a finished rerun.
            let work = move || async move {
                paid.fetch_add(1, Ordering::SeqCst);
                let _ = answers.wait_for(|n| *n >= CALLS - 1).await;
                Ok::<_, Failure<String>>("paid again".to_string())
            };
            let outcome = engines[i]
                .call(key(), Fingerprint::new("a"))
                .reconcile(|_| async { Reconciled::RunAgain })
                .run(work)
                .await;
            answered.send_modify(|n| *n += 1);
            outcome
        }
    })
    .await;
    let ran = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(out) if !out.replayed))
        .count();
    let conflicts = outcomes
        .iter()
        .filter(|o| **o == Err(Error::Conflict))
        .count();
    assert_eq!((ran, conflicts), (1, CALLS - 1), "{outcomes:?}");
    assert_eq!(paid.load(Ordering::SeqCst), 1);
    let record = backend.connect().await.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.fence.0, vanished.fence.0 + 1, "taken over once");
}

/// An operator settles a key of unknown outcome by hand: never while its holder's lease is
/// live, once after; later calls replay the settled result; a retryable failure releases it.
pub async fn settle_by_hand_resolves_only_an_unknown_key<B: Backend>(backend: &B) {
    let once = Once::new(backend.connect().await);
    let done = Settlement::<String, String>::Completed("checked by hand".to_string());
    assert_eq!(
        once.settle(&key(), done.clone()).await,
        Err(SettleError::NotFound)
    );
    vanished_holder(backend).await;
    assert_eq!(
        once.settle(&key(), done.clone()).await,
        Err(SettleError::NotUnknown)
    );
    backend.advance(LEASE).await;
    assert_eq!(once.settle(&key(), done.clone()).await, Ok(()));
    assert_eq!(
        once.settle(&key(), done).await,
        Err(SettleError::NotUnknown)
    );
    let replayed = once.run(key(), Fingerprint::new("a"), || answer("ran".to_string()));
    let settled = Output {
        value: "checked by hand".to_string(),
        replayed: true,
    };
    assert_eq!(replayed.await, Ok(settled));

    let other = Key::new("engine", "released");
    let req = request(&other, "a", 7, OnExpired::TakeOver);
    assert!(matches!(
        once.store().claim(req).await.unwrap(),
        ClaimOutcome::Acquired { .. }
    ));
    backend.advance(LEASE).await;
    let release = Settlement::<String, String>::Failed(Failure::retryable("refunded".to_string()));
    assert_eq!(once.settle(&other, release).await, Ok(()));
    let rerun = once.run(other, Fingerprint::new("a"), || answer("ran".to_string()));
    assert_eq!(rerun.await.map(|o| o.value), Ok("ran".to_string()));
}

/// A holder that claimed [`key`] and vanished (a crashed process): it never renews.
async fn vanished_holder<B: Backend>(backend: &B) -> Token {
    let store = backend.connect().await;
    match store
        .claim(request(&key(), "a", 1, OnExpired::TakeOver))
        .await
        .unwrap()
    {
        ClaimOutcome::Acquired { token, .. } => token,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

fn pay(
    paid: &Arc<AtomicUsize>,
    value: &'static str,
) -> impl FnOnce() -> std::future::Ready<Result<String, Failure<String>>> + Send + 'static {
    let paid = Arc::clone(paid);
    move || {
        paid.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value.to_string()))
    }
}
