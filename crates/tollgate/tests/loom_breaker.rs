//! loom models of the half-open permit accounting and the state transitions, exploring every
//! interleaving of the breaker's real code (its lock and atomic word are loom's under
//! `cfg(tollgate_loom)`). Run with:
//! `RUSTFLAGS="--cfg tollgate_loom" cargo test -p tollgate --release --test loom_breaker`
#![cfg(tollgate_loom)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loom::thread;
use tollgate::breaker::{Breaker, BreakerConfig, SlidingWindow, State};
use tollgate::clock::{Clock, ManualClock};

const WAIT: Duration = Duration::from_secs(1);

/// A breaker that has opened and whose wait has elapsed: the next call moves it to half-open.
fn ready_for_trials(trials: u32) -> Arc<Breaker> {
    let clock = ManualClock::new();
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(1))
        .minimum_calls(1)
        .wait_in_open(WAIT)
        .permitted_calls_in_half_open(trials)
        .max_wait_in_half_open(None);
    let b = Breaker::with_clock("loom", config, Clock::from(clock.clone())).unwrap();
    b.try_acquire().unwrap().failure();
    clock.advance(WAIT);
    Arc::new(b)
}

#[test]
fn half_open_grants_exactly_the_permitted_trials() {
    loom::model(|| {
        let b = ready_for_trials(2);
        let granted = Arc::new(AtomicUsize::new(0));
        let racers: Vec<_> = (0..3)
            .map(|_| {
                let (b, granted) = (b.clone(), granted.clone());
                thread::spawn(move || {
                    if let Ok(permit) = b.try_acquire() {
                        granted.fetch_add(1, Ordering::SeqCst);
                        std::mem::forget(permit); // held for the rest of the model
                    }
                })
            })
            .collect();
        racers.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(granted.load(Ordering::SeqCst), 2);
        assert_eq!(b.state(), State::HalfOpen);
    });
}

#[test]
fn a_dropped_trial_returns_its_slot_whatever_the_interleaving() {
    loom::model(|| {
        let b = ready_for_trials(1);
        let dropper = {
            let b = b.clone();
            thread::spawn(move || {
                if let Ok(permit) = b.try_acquire() {
                    drop(permit); // cancelled: the slot goes back
                }
            })
        };
        let other = {
            let b = b.clone();
            thread::spawn(move || b.try_acquire().map(std::mem::forget).is_ok())
        };
        dropper.join().unwrap();
        let other_got_one = other.join().unwrap();
        // If the other thread holds the single slot, nothing is left; otherwise the dropped
        // trial's slot must have come back.
        assert_eq!(
            b.try_acquire().map(std::mem::forget).is_ok(),
            !other_got_one
        );
    });
}

#[test]
fn concurrent_trial_results_close_the_breaker_exactly_once() {
    loom::model(|| {
        let b = ready_for_trials(2);
        let mut events = b.subscribe();
        let reporters: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire().map(|permit| permit.success()).is_ok())
            })
            .collect();
        for reporter in reporters {
            assert!(reporter.join().unwrap(), "two slots, two trials");
        }
        assert_eq!(b.state(), State::Closed);
        let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|e| (e.from, e.to))
            .collect();
        assert_eq!(
            seen,
            [
                (State::Open, State::HalfOpen),
                (State::HalfOpen, State::Closed)
            ]
        );
    });
}

#[test]
fn a_call_racing_the_opening_transition_is_rejected_or_not_counted() {
    loom::model(|| {
        let clock = ManualClock::new();
        let config = BreakerConfig::default()
            .window(SlidingWindow::Count(1))
            .minimum_calls(1)
            .wait_in_open(WAIT);
        let b = Arc::new(Breaker::with_clock("loom", config, Clock::from(clock)).unwrap());
        let opener = {
            let b = b.clone();
            thread::spawn(move || b.try_acquire().map(|permit| permit.failure()).is_ok())
        };
        let racer = {
            let b = b.clone();
            thread::spawn(move || {
                if let Ok(permit) = b.try_acquire() {
                    permit.success();
                }
            })
        };
        let opened = opener.join().unwrap();
        racer.join().unwrap();
        // The racer's success is recorded before the failure (which then replaces it in the
        // one-call window), or after the opening (stale epoch: dropped), or it is rejected.
        // In no interleaving can it keep the breaker closed or close it again.
        assert!(opened);
        assert_eq!(b.state(), State::Open);
    });
}

/// A breaker of `config` on a clock that stands still.
fn on_manual_clock(config: BreakerConfig) -> Arc<Breaker> {
    Arc::new(Breaker::with_clock("loom", config, Clock::from(ManualClock::new())).unwrap())
}

/// One thread per outcome (`true`: a failure), each taking a permit and reporting; returns once
/// all have reported.
fn report_at_once(b: &Arc<Breaker>, failed: &[bool]) {
    let calls: Vec<_> = failed
        .iter()
        .map(|&fail| {
            let b = b.clone();
            thread::spawn(move || {
                let permit = b.try_acquire().unwrap();
                if fail {
                    permit.failure()
                } else {
                    permit.success()
                }
            })
        })
        .collect();
    calls.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn lock_free_successes_and_a_failure_reach_the_decision_in_every_interleaving() {
    loom::model(|| {
        let config = BreakerConfig::default()
            .window(SlidingWindow::Count(3))
            .minimum_calls(3)
            .failure_rate_threshold(33.0);
        let b = on_manual_clock(config);
        report_at_once(&b, &[true, false, false]);
        // Whichever call completes the minimum of 3 sees the failure: 1 of 3 ≥ 33 %.
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.totals().calls, 3);
        assert_eq!(b.totals().failures, 1);
    });
}

#[test]
fn a_time_window_success_skipping_the_lock_is_seen_by_a_racing_failures_decision() {
    loom::model(|| {
        let config = BreakerConfig::default()
            .window(SlidingWindow::Time {
                length: Duration::from_secs(10),
                buckets: 10,
            })
            .minimum_calls(4)
            .failure_rate_threshold(50.0);
        let b = on_manual_clock(config);
        // 1 failure in 2 calls: no single success can open the breaker in this bucket (at the
        // minimum of 4 calls, 1 failure is 25 %), so successes skip the lock.
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        report_at_once(&b, &[true, false]);
        // 2 of 4 = 50 %: the failure's decision sums the success, or finds that a success
        // could now open the breaker, and the success, reading that, decides itself.
        assert_eq!(b.state(), State::Open);
        assert_eq!((b.totals().calls, b.totals().failures), (4, 2));
    });
}
