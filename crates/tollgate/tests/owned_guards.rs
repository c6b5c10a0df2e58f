//! Owned guards: a breaker permit and a bulkhead slot that hold their primitive (an `Arc`, a
//! `Bulkhead` clone, or a `&'static` reference), moved into other tasks, keep every guarantee
//! of the borrowed ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use tollgate::breaker::{Breaker, BreakerConfig, OwnedPermit, PermitGuard, SlidingWindow, State};
use tollgate::clock::{Clock, ManualClock};
use tollgate::policy::{Bulkhead, BulkheadGuard, OwnedBulkheadSlot};

const TASKS: usize = 1_000;
const WAIT: Duration = Duration::from_secs(30);

fn half_open_breaker(trials: u32) -> Arc<Breaker> {
    let clock = ManualClock::new();
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(10))
        .minimum_calls(1)
        .wait_in_open(WAIT)
        .permitted_calls_in_half_open(trials)
        .max_wait_in_half_open(None);
    let b = Breaker::with_clock("owned", config, Clock::from(clock.clone())).unwrap();
    b.try_acquire().unwrap().failure();
    clock.advance(WAIT);
    Arc::new(b)
}

/// Every task asks at once for an owned permit, and hands what it got to a spawned task.
async fn race_owned_permits(b: &Arc<Breaker>) -> Vec<OwnedPermit> {
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (b, start) = (Arc::clone(b), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                b.try_acquire_owned().ok()
            })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        granted.extend(task.await.unwrap());
    }
    granted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_admits_exactly_the_configured_owned_permits_among_1000_racers() {
    let b = half_open_breaker(3);
    let granted = race_owned_permits(&b).await;
    assert_eq!(granted.len(), 3);
    assert!(granted.iter().all(OwnedPermit::is_trial));
    // Dropped in other tasks (cancelled calls): every slot comes back, nothing is counted.
    for permit in granted {
        tokio::spawn(async move { drop(permit) }).await.unwrap();
    }
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(race_owned_permits(&b).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_trial_permits_recorded_in_spawned_tasks_close_the_breaker() {
    let b = half_open_breaker(2);
    let permits = [
        b.try_acquire_owned().unwrap(),
        b.try_acquire_owned().unwrap(),
    ];
    assert!(b.try_acquire_owned().is_err(), "only two trials");
    for permit in permits {
        tokio::spawn(async move { permit.success() }).await.unwrap();
    }
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_permit_outlives_every_other_handle_on_its_breaker() {
    let b = Arc::new(Breaker::new("short-lived", BreakerConfig::default()).unwrap());
    let permit = b.try_acquire_owned().unwrap();
    let weak = Arc::downgrade(&b);
    drop(b);
    assert!(
        weak.upgrade().is_some(),
        "the permit keeps its breaker alive"
    );
    tokio::spawn(async move { permit.failure() }).await.unwrap();
    assert!(weak.upgrade().is_none(), "and only the permit did");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owned_slots_admit_exactly_the_limit_among_1000_racers_and_free_in_other_tasks() {
    const LIMIT: usize = 10;
    let bulkhead = Bulkhead::new(LIMIT, Duration::ZERO);
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (bulkhead, start) = (bulkhead.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                bulkhead.try_acquire_owned().ok()
            })
        })
        .collect();
    let mut slots: Vec<OwnedBulkheadSlot> = Vec::new();
    for task in tasks {
        slots.extend(task.await.unwrap());
    }
    assert_eq!(slots.len(), LIMIT);
    assert_eq!(bulkhead.available(), 0);
    for slot in slots {
        tokio::spawn(async move { drop(slot) }).await.unwrap();
    }
    assert_eq!(bulkhead.available(), LIMIT);
}

#[tokio::test(start_paused = true)]
async fn acquire_owned_waits_for_a_slot_freed_by_another_task() {
    let bulkhead = Bulkhead::new(1, Duration::from_secs(5));
    let held = bulkhead.acquire_owned().await.unwrap();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
    });
    let waited = bulkhead.acquire_owned().await;
    assert!(waited.is_ok(), "freed after 1 s, within the 5 s wait");
    holder.await.unwrap();
    assert!(
        bulkhead.try_acquire_owned().is_err(),
        "the waiter holds it now"
    );
}

/// `&'static` handles: permits and slots that are `'static` without a reference count keep
/// the exact admission counts among 1,000 racers, and free in other tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_handles_admit_exactly_the_limit_among_1000_racers() {
    const LIMIT: usize = 10;
    let bulkhead: &'static Bulkhead = Box::leak(Box::new(Bulkhead::new(LIMIT, Duration::ZERO)));
    let breaker: &'static Breaker =
        Box::leak(Box::new(Arc::into_inner(half_open_breaker(3)).unwrap()));
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                (
                    BulkheadGuard::try_acquire(&bulkhead).ok(),
                    PermitGuard::try_acquire(&breaker).ok(),
                )
            })
        })
        .collect();
    let (mut slots, mut permits) = (Vec::new(), Vec::new());
    for task in tasks {
        let (slot, permit) = task.await.unwrap();
        slots.extend(slot);
        permits.extend(permit);
    }
    assert_eq!(slots.len(), LIMIT);
    assert_eq!(permits.len(), 3);
    assert_eq!(bulkhead.available(), 0);
    let unpaired = slots.split_off(permits.len());
    for (slot, permit) in slots.into_iter().zip(permits) {
        tokio::spawn(async move {
            drop(slot);
            permit.success();
        })
        .await
        .unwrap();
    }
    assert_eq!(
        bulkhead.available(),
        3,
        "the three slots dropped in tasks are free, the other seven still held"
    );
    assert_eq!(breaker.state(), State::Closed, "three successful trials");
    drop(unpaired);
    assert_eq!(bulkhead.available(), LIMIT);
}

/// A slot moved to another handle of its bulkhead stays one slot; a handle of another
/// bulkhead is refused and the guard handed back unchanged.
#[tokio::test]
async fn rehold_moves_a_slot_to_another_handle_of_its_bulkhead_only() {
    let bulkhead = Bulkhead::new(2, Duration::ZERO);
    let static_handle: &'static Bulkhead = Box::leak(Box::new(bulkhead.clone()));
    let owned = bulkhead.try_acquire_owned().unwrap();
    assert_eq!(bulkhead.available(), 1);
    let moved = owned.rehold(static_handle).unwrap();
    assert_eq!(bulkhead.available(), 1, "still one slot held");
    drop(moved);
    assert_eq!(bulkhead.available(), 2);

    let other = Bulkhead::new(1, Duration::ZERO);
    let owned = bulkhead.try_acquire_owned().unwrap();
    let refused = owned.rehold(other.clone()).unwrap_err();
    assert_eq!((bulkhead.available(), other.available()), (1, 1));
    drop(refused);
    assert_eq!(bulkhead.available(), 2);
}

/// Waiters are served in the order they came (tokio's `Notify` is first in, first out), and a
/// `rehold` in between, with no other slot freed meanwhile, wakes none of them: one it woke
/// would find no slot and queue again behind the others.
#[tokio::test(start_paused = true)]
async fn rehold_wakes_no_waiter_and_the_first_waiter_gets_the_next_slot() {
    let bulkhead = Bulkhead::new(1, Duration::from_secs(60));
    let static_handle: &'static Bulkhead = Box::leak(Box::new(bulkhead.clone()));
    let held = bulkhead.try_acquire_owned().unwrap();
    let mut first = Box::pin(bulkhead.acquire_owned());
    let mut second = Box::pin(bulkhead.acquire_owned());
    assert!(futures_poll_once(first.as_mut()).is_pending());
    assert!(futures_poll_once(second.as_mut()).is_pending());

    let held = held.rehold(static_handle).unwrap();
    // A woken `first` would re-register behind `second` here.
    assert!(futures_poll_once(first.as_mut()).is_pending());
    assert!(futures_poll_once(second.as_mut()).is_pending());

    drop(held);
    assert!(
        futures_poll_once(second.as_mut()).is_pending(),
        "not second's turn"
    );
    let slot = first.await.unwrap();
    assert_eq!(bulkhead.available(), 0);
    drop(slot);
    assert!(second.await.is_ok());
}

/// Polls `fut` once with a waker that does nothing.
fn futures_poll_once<F: std::future::Future>(
    fut: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    fut.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}
