//! The breaker under real contention: many tasks on a multi-thread runtime, released together.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use tollgate::breaker::{Breaker, BreakerConfig, Outcome, SlidingWindow, State};
use tollgate::clock::{Clock, ManualClock};

const TASKS: usize = 1_000;
const WAIT: Duration = Duration::from_secs(30);

fn open_breaker(trials: u32) -> (Arc<Breaker>, ManualClock) {
    let clock = ManualClock::new();
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(10))
        .minimum_calls(1)
        .wait_in_open(WAIT)
        .permitted_calls_in_half_open(trials)
        .max_wait_in_half_open(None);
    let b = Breaker::with_clock("contended", config, Clock::from(clock.clone())).unwrap();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    clock.advance(WAIT);
    (Arc::new(b), clock)
}

/// Every task asks for a permit at once; winners hold theirs until every task has asked.
async fn race_for_trials(b: &Arc<Breaker>) -> usize {
    let start = Arc::new(Barrier::new(TASKS));
    let asked = Arc::new(Barrier::new(TASKS));
    let granted = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (b, start, asked, granted) =
                (b.clone(), start.clone(), asked.clone(), granted.clone());
            tokio::spawn(async move {
                start.wait().await;
                let permit = b.try_acquire().ok();
                if permit.is_some() {
                    granted.fetch_add(1, Ordering::SeqCst);
                }
                asked.wait().await;
                drop(permit); // cancelled trials: their slots come back
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    granted.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_admits_exactly_the_configured_trials_among_1000_racers() {
    for trials in [1, 3, 10] {
        let (b, _clock) = open_breaker(trials);
        let mut events = b.subscribe();
        assert_eq!(race_for_trials(&b).await, trials as usize);
        assert_eq!(b.state(), State::HalfOpen);
        let half_opens = std::iter::from_fn(|| events.try_recv().ok())
            .filter(|e| e.to == State::HalfOpen)
            .count();
        assert_eq!(half_opens, 1, "exactly one Open -> HalfOpen transition");
        // Every slot was given back by the dropped permits: a new race gets the same number.
        assert_eq!(race_for_trials(&b).await, trials as usize);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_outcomes_are_all_counted_and_open_the_breaker_once() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(TASKS as u32 * 2))
        .minimum_calls(TASKS as u32 * 2)
        .failure_rate_threshold(50.0);
    let b = Arc::new(Breaker::new("counted", config).unwrap());
    let mut events = b.subscribe();
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (b, start) = (b.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let outcome = if i % 2 == 0 {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                b.try_acquire().unwrap().record(outcome);
                b.try_acquire().unwrap().record(Outcome::Failure);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // The 2,000th outcome completed the window at 75 % failures: open, exactly once.
    assert_eq!(b.state(), State::Open);
    let opened = std::iter::from_fn(|| events.try_recv().ok())
        .filter(|e| e.to == State::Open)
        .count();
    assert_eq!(opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_free_successes_and_locked_failures_are_counted_exactly() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(TASKS as u32 * 10))
        .minimum_calls(TASKS as u32 * 10)
        .failure_rate_threshold(50.0);
    let b = Arc::new(Breaker::new("exact", config).unwrap());
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (b, start) = (b.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                for i in 0..10 {
                    let outcome = if i == 5 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    b.try_acquire().unwrap().record(outcome);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let totals = b.totals();
    assert_eq!(
        (totals.calls, totals.failures),
        (TASKS as u32 * 10, TASKS as u32)
    );
    assert_eq!(b.state(), State::Closed, "10 % failures");
}

/// 1,000 tasks released together report on one time-window breaker: every success (counted
/// without the lock) and every failure (counted under it) is in the totals, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn time_window_counts_every_outcome_of_1000_racing_tasks() {
    const EACH: usize = 50;
    let clock = ManualClock::new();
    let config = BreakerConfig::default()
        .window(SlidingWindow::Time {
            length: Duration::from_secs(60),
            buckets: 60,
        })
        .minimum_calls(1)
        .failure_rate_threshold(100.0); // opens only if every call failed
    let b = Arc::new(Breaker::with_clock("timed", config, Clock::from(clock.clone())).unwrap());
    // One success first: otherwise a failure recorded before any racing success would be the
    // window's only call — a 100 % failure rate that rightly opens the breaker (seen in CI).
    b.try_acquire().unwrap().record(Outcome::Success);
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (b, start, clock) = (b.clone(), start.clone(), clock.clone());
            tokio::spawn(async move {
                start.wait().await;
                for j in 0..EACH {
                    // Every tenth task fails once; the clock moves across buckets meanwhile.
                    let failed = i % 10 == 0 && j == 0;
                    b.try_acquire().unwrap().record(if failed {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                    if i % 100 == 0 && j % 10 == 0 {
                        clock.advance(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let totals = b.totals();
    assert_eq!(
        (totals.calls, totals.failures, b.state()),
        (
            (TASKS * EACH) as u32 + 1,
            (TASKS / 10) as u32,
            State::Closed
        )
    );
}

/// Successes racing failures across the minimum number of calls: whichever outcome completes
/// the window, the breaker opens once the rate is reached (the lock-free success sees the
/// failures, or the failure's decision sees the successes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn time_window_opens_when_racing_outcomes_reach_the_rate() {
    for round in 0..50 {
        let clock = ManualClock::new();
        let config = BreakerConfig::default()
            .window(SlidingWindow::Time {
                length: Duration::from_secs(60),
                buckets: 60,
            })
            .minimum_calls(200)
            .failure_rate_threshold(50.0);
        let b = Arc::new(Breaker::with_clock("raced", config, Clock::from(clock)).unwrap());
        let permits: Vec<_> = (0..200).map(|_| b.try_acquire_owned().unwrap()).collect();
        let start = Arc::new(Barrier::new(200));
        let tasks: Vec<_> = permits
            .into_iter()
            .enumerate()
            .map(|(i, permit)| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    permit.record(if i % 2 == 0 {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    });
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(b.state(), State::Open, "round {round}: 100 of 200 = 50 %");
    }
}
