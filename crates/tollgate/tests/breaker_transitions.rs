//! State transitions of one breaker, driven by a manual clock or tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::time::Duration;

use tollgate::breaker::{
    Breaker, BreakerConfig, BreakerEvent, CallError, Outcome, Reason, SlidingWindow, State,
};
use tollgate::clock::{Clock, ManualClock};

const WAIT: Duration = Duration::from_secs(10);

fn config() -> BreakerConfig {
    BreakerConfig::default()
        .window(SlidingWindow::Count(10))
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(WAIT)
        .permitted_calls_in_half_open(2)
        .max_wait_in_half_open(None)
}

fn breaker(clock: &ManualClock, config: BreakerConfig) -> Breaker {
    Breaker::with_clock("dep", config, Clock::from(clock.clone())).unwrap()
}

fn record(b: &Breaker, outcomes: &[Outcome]) {
    for &o in outcomes {
        b.try_acquire().unwrap().record(o);
    }
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<BreakerEvent>) -> Vec<(State, State, Reason)> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .map(|e| (e.from, e.to, e.reason))
        .collect()
}

use Outcome::{Failure as F, Ignored as I, Success as S};

#[test]
fn opens_once_minimum_calls_reached_at_the_failure_threshold() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config());
    record(&b, &[F, F, F]);
    assert_eq!(b.state(), State::Closed, "3 calls < minimum of 4");
    record(&b, &[S]);
    assert_eq!(b.state(), State::Open, "2 of 4 failed = 50 %");
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.retry_after(), Some(WAIT));
    clock.advance(Duration::from_secs(4));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(6))
    );
}

#[test]
fn stays_closed_below_the_threshold_and_ignored_calls_do_not_count() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config());
    record(&b, &[F, S, S, S, I, I, I, F, S]);
    assert_eq!(b.totals().calls, 6);
    assert_eq!(b.totals().failures, 2);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_after_the_wait_then_closes_when_trials_pass() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config());
    let mut events = b.subscribe();
    record(&b, &[F, F, F, F]);
    clock.advance(WAIT);
    let first = b.try_acquire().unwrap();
    assert!(first.is_trial());
    assert_eq!(b.state(), State::HalfOpen);
    let second = b.try_acquire().unwrap();
    assert_eq!(
        b.try_acquire().unwrap_err().state(),
        State::HalfOpen,
        "only 2 trials"
    );
    first.success();
    assert_eq!(b.state(), State::HalfOpen, "waits for every trial");
    second.success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.totals().calls, 0, "closing starts a fresh window");
    assert_eq!(
        drain(&mut events),
        vec![
            (State::Closed, State::Open, Reason::FailureRate(100.0)),
            (State::Open, State::HalfOpen, Reason::WaitElapsed),
            (State::HalfOpen, State::Closed, Reason::TrialsPassed),
        ]
    );
}

#[test]
fn failed_trials_open_again_for_a_full_wait() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config());
    record(&b, &[F, F, F, F]);
    clock.advance(WAIT);
    record(&b, &[S, F]);
    assert_eq!(b.state(), State::Open, "1 of 2 trials failed = 50 %");
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(WAIT));
}

#[test]
fn dropped_and_ignored_trials_give_their_slot_back() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config());
    record(&b, &[F, F, F, F]);
    clock.advance(WAIT);
    let cancelled = b.try_acquire().unwrap();
    let ignored = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(cancelled);
    ignored.ignore();
    record(&b, &[S, S]);
    assert_eq!(b.state(), State::Closed, "two fresh trials decided it");
}

#[test]
fn max_wait_in_half_open_reopens_a_breaker_whose_trials_hang() {
    let clock = ManualClock::new();
    let b = breaker(
        &clock,
        config().max_wait_in_half_open(Some(Duration::from_secs(5))),
    );
    let mut events = b.subscribe();
    record(&b, &[F, F, F, F]);
    clock.advance(WAIT);
    let _hung_a = b.try_acquire().unwrap();
    let hung_b = b.try_acquire().unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.try_acquire().unwrap_err().state(), State::Open);
    hung_b.failure(); // a stale trial: its epoch is over, it changes nothing
    assert_eq!(b.state(), State::Open);
    let reasons: Vec<_> = drain(&mut events).into_iter().map(|e| e.2).collect();
    assert_eq!(reasons[2], Reason::HalfOpenTimeout);
    assert_eq!(reasons.len(), 3);
}

#[test]
fn a_call_permitted_while_closed_cannot_count_after_a_transition() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config());
    let slow_starter = b.try_acquire().unwrap();
    record(&b, &[F, F, F, F]);
    clock.advance(WAIT);
    let trial = b.try_acquire().unwrap();
    slow_starter.success(); // permitted in epoch 0: must not count as a trial
    let second = b.try_acquire().unwrap();
    trial.success();
    assert_eq!(b.state(), State::HalfOpen);
    second.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn slow_calls_open_the_breaker() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config().slow_calls(Duration::from_secs(1), 75.0));
    for _ in 0..3 {
        let permit = b.try_acquire().unwrap();
        clock.advance(Duration::from_secs(2));
        permit.success();
    }
    b.try_acquire().unwrap().success();
    assert_eq!(b.totals().slow, 3);
    assert_eq!(b.state(), State::Open, "3 of 4 slow = 75 %");
}

#[test]
fn time_window_forgets_old_failures() {
    let clock = ManualClock::new();
    let window = SlidingWindow::Time {
        length: Duration::from_secs(10),
        buckets: 10,
    };
    let b = breaker(&clock, config().window(window));
    record(&b, &[F, F, F]);
    clock.advance(Duration::from_secs(10));
    record(&b, &[S, S, S, F]);
    assert_eq!(
        b.totals().failures,
        1,
        "the first three failures left the window"
    );
    assert_eq!(b.state(), State::Closed, "1 of 4 = 25 %");
    record(&b, &[F, F]);
    assert_eq!(b.state(), State::Open, "3 of 6 = 50 %");
}

#[test]
fn manual_states() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config());
    b.force_open();
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(
        (rejected.state(), rejected.retry_after()),
        (State::ForcedOpen, None)
    );
    b.disable();
    record(&b, &[F, F, F, F, F]);
    assert_eq!((b.state(), b.totals().calls), (State::Disabled, 0));
    b.metrics_only();
    record(&b, &[F, F, F, F, F]);
    assert_eq!((b.state(), b.totals().failures), (State::MetricsOnly, 5));
    b.reset();
    assert_eq!((b.state(), b.totals().calls), (State::Closed, 0));
}

#[tokio::test(start_paused = true)]
async fn follows_tokio_paused_time() {
    let b = Breaker::new("paused", config()).unwrap();
    for _ in 0..4 {
        let _ = b.call(async { Err::<(), _>("boom") }).await;
    }
    match b.call(async { Ok::<_, &str>(()) }).await {
        Err(CallError::Rejected(r)) => assert_eq!(r.retry_after(), Some(WAIT)),
        other => panic!("expected rejection, got {other:?}"),
    }
    tokio::time::advance(WAIT).await;
    assert_eq!(b.call(async { Ok::<_, &str>(7) }).await, Ok(7));
    assert_eq!(b.state(), State::HalfOpen);
}

#[tokio::test]
async fn a_cancelled_call_counts_nothing() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config().minimum_calls(1));
    let never = std::future::pending::<Result<(), ()>>();
    let call = b.call(never);
    // Poll once so the permit is taken, then drop the call mid-flight.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), call)
            .await
            .is_err()
    );
    assert_eq!(b.totals().calls, 0);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn invalid_configuration_is_refused_with_the_field_named() {
    let err = Breaker::new("x", config().failure_rate_threshold(0.0)).unwrap_err();
    assert_eq!(err.field(), "failure_rate_threshold");
    assert_eq!(
        err.to_string(),
        "invalid breaker setting `failure_rate_threshold`: must be a percentage in (0, 100]"
    );
}

fn time_window(length_secs: u64) -> SlidingWindow {
    SlidingWindow::Time {
        length: Duration::from_secs(length_secs),
        buckets: length_secs as u32,
    }
}

#[test]
fn time_window_success_that_brings_the_window_to_its_minimum_opens_it() {
    // The successes are counted without the lock; while the window holds failures, the one
    // that makes the minimum number of calls must still decide.
    let clock = ManualClock::new();
    let b = breaker(&clock, config().window(time_window(10)).minimum_calls(10));
    record(&b, &[F, F, F, F, F, S, S, S, S]);
    assert_eq!((b.state(), b.totals().calls), (State::Closed, 9));
    record(&b, &[S]);
    assert_eq!(
        b.state(),
        State::Open,
        "5 of 10 = 50 % once 10 calls are in"
    );
    assert_eq!(
        (b.totals().calls, b.totals().failures),
        (10, 5),
        "the window that opened the breaker stays readable"
    );
}

#[test]
fn time_window_success_that_brings_the_window_to_its_minimum_opens_it_on_slow_calls() {
    // Slow successes are recorded under the lock, plain ones without it: the plain one that
    // makes the minimum number of calls decides on the slow-call rate.
    let clock = ManualClock::new();
    let config = config()
        .window(time_window(10))
        .minimum_calls(10)
        .slow_calls(Duration::from_secs(1), 50.0);
    let b = breaker(&clock, config);
    for _ in 0..5 {
        let permit = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(1_000));
        permit.success();
    }
    record(&b, &[S, S, S, S]);
    assert_eq!(
        (b.state(), b.totals().calls, b.totals().slow),
        (State::Closed, 9, 5)
    );
    record(&b, &[S]);
    assert_eq!(b.state(), State::Open, "5 of 10 slow = 50 %");
}

#[test]
fn time_window_success_after_a_bucket_left_decides_on_the_new_rate() {
    // Within a bucket, a success cannot raise a rate, so successes after a failure skip the
    // lock. Once a bucket leaves, the rate may have risen: the first success of the next
    // bucket decides again. (Skipping the lock for the rest of the window keeps this breaker
    // closed at 60 %.)
    let clock = ManualClock::new();
    let b = breaker(&clock, config().window(time_window(2)));
    record(&b, &[S, S, S, S]);
    clock.advance(Duration::from_secs(1));
    record(&b, &[F, F, F, S]);
    assert_eq!(
        (b.state(), b.totals().calls, b.totals().failures),
        (State::Closed, 8, 3),
        "3 of 8 = 37.5 %"
    );
    // The four successes of the first second leave. (The totals are not read here: reading
    // them after a bucket left also makes the next success decide, which would hide the rule.)
    clock.advance(Duration::from_secs(1));
    assert_eq!(b.state(), State::Closed, "nothing decides without a call");
    record(&b, &[S]);
    assert_eq!(
        (b.state(), b.totals().calls, b.totals().failures),
        (State::Open, 5, 3),
        "3 of 5 = 60 %"
    );
}

#[test]
fn time_window_successes_among_failures_are_counted_exactly_across_buckets() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config().window(time_window(4)));
    record(&b, &[F, S, S, S]);
    for _ in 0..8 {
        clock.advance(Duration::from_secs(1));
        record(&b, &[S, S, S, S, S, S, S, S, S]);
        record(&b, &[F]);
        assert_eq!(b.state(), State::Closed, "at most 4 of 40 = 10 %");
    }
    assert_eq!(
        (b.totals().calls, b.totals().failures),
        (40, 4),
        "four buckets of 9 successes and a failure"
    );
}

#[test]
fn time_window_successes_leave_with_their_buckets() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config().window(time_window(10)));
    record(&b, &[S, S, S]);
    clock.advance(Duration::from_secs(5));
    record(&b, &[S, S]);
    assert_eq!(b.totals().calls, 5);
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.totals().calls, 2, "the first three left at 10 s");
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.totals().calls, 0);
    // A whole window later, a slot is taken over by a new bucket: counted from 1 again.
    record(&b, &[S]);
    assert_eq!(
        b.totals(),
        tollgate::breaker::Totals {
            calls: 1,
            failures: 0,
            slow: 0
        }
    );
}

#[test]
fn time_window_success_permitted_in_an_earlier_window_is_not_counted() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config().window(time_window(10)));
    let old = b.try_acquire().unwrap();
    let while_open = b.try_acquire().unwrap();
    record(&b, &[S, S]);
    b.force_open();
    while_open.success();
    assert_eq!(
        b.totals().calls,
        2,
        "the window that was closed stays readable, without a success reported after it ended"
    );
    b.reset(); // a new, empty closed window
    assert_eq!(b.totals().calls, 0);
    old.success();
    assert_eq!(b.totals().calls, 0, "its window ended before it reported");
    record(&b, &[S]);
    assert_eq!(b.totals().calls, 1);
}

#[test]
fn time_window_successes_after_failures_left_take_the_fast_path_and_count() {
    let clock = ManualClock::new();
    let b = breaker(&clock, config().window(time_window(10)).minimum_calls(4));
    record(&b, &[F]);
    clock.advance(Duration::from_secs(10)); // the failure leaves
    record(&b, &[S, S, S, F]);
    assert_eq!(
        (b.state(), b.totals().calls, b.totals().failures),
        (State::Closed, 4, 1),
        "1 of 4 = 25 %"
    );
    record(&b, &[F, F]);
    assert_eq!(b.state(), State::Open, "3 of 6 = 50 %");
}

#[test]
fn a_new_time_window_never_counts_successes_of_a_window_256_transitions_older() {
    // The lock-free success counts carry the low byte of their window's epoch; a window
    // entered 256 transitions later has the same byte, and must still start empty.
    let clock = ManualClock::new();
    let b = breaker(&clock, config().window(time_window(60)).minimum_calls(100));
    record(&b, &[S; 10]);
    assert_eq!(b.totals().calls, 10);
    for round in 0..128 {
        b.force_open();
        b.reset();
        assert_eq!(
            b.totals().calls,
            0,
            "window after {} transitions",
            2 * (round + 1)
        );
        clock.advance(Duration::from_millis(10));
    }
    record(&b, &[S; 3]);
    assert_eq!(b.totals().calls, 3);
    assert_eq!(b.state(), State::Closed);
}
