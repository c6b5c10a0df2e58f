//! The breaker and the policy report through the `metrics` facade.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tollgate::breaker::{Breaker, BreakerConfig, SlidingWindow, State};
use tollgate::clock::{Clock, ManualClock};
use tollgate::policy::Policy;

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Snapshots drain the recorder: take one, then look values up in it.
fn snapshot(recorder: &DebuggingRecorder) -> Snapshot {
    recorder.snapshotter().snapshot().into_vec()
}

fn value<'s>(
    snapshot: &'s Snapshot,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'s DebugValue> {
    snapshot.iter().find_map(|(key, _, _, value)| {
        let k = key.key();
        let matches = k.name() == name
            && labels.iter().all(|(l, v)| {
                k.labels()
                    .any(|label| label.key() == *l && label.value() == *v)
            });
        matches.then_some(value)
    })
}

#[test]
fn calls_rejections_state_and_transitions_are_counted() {
    let recorder = DebuggingRecorder::new();
    let clock = ManualClock::new();
    metrics::with_local_recorder(&recorder, || {
        let config = BreakerConfig::default()
            .window(SlidingWindow::Count(4))
            .minimum_calls(4)
            .wait_in_open(Duration::from_secs(5));
        let b = Breaker::with_clock("llm", config, Clock::from(clock.clone())).unwrap();
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().ignore();
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
        }
        assert!(b.try_acquire().is_err());
        assert!(b.try_acquire().is_err());
    });
    let snap = snapshot(&recorder);
    let calls = |outcome| {
        value(
            &snap,
            "tollgate_breaker_calls_total",
            &[("breaker", "llm"), ("outcome", outcome)],
        )
    };
    assert_eq!(calls("success"), Some(&DebugValue::Counter(1)));
    assert_eq!(calls("ignored"), Some(&DebugValue::Counter(1)));
    assert_eq!(calls("failure"), Some(&DebugValue::Counter(3)));
    assert_eq!(
        value(
            &snap,
            "tollgate_breaker_not_permitted_total",
            &[("breaker", "llm")]
        ),
        Some(&DebugValue::Counter(2))
    );
    assert_eq!(
        value(
            &snap,
            "tollgate_breaker_transitions_total",
            &[("from", "closed"), ("to", "open")]
        ),
        Some(&DebugValue::Counter(1))
    );
    let state = value(&snap, "tollgate_breaker_state", &[("breaker", "llm")]);
    assert!(matches!(state, Some(DebugValue::Gauge(g)) if g.0 == 1.0));
}

#[tokio::test]
async fn policy_counts_resolutions_by_status() {
    let recorder = DebuggingRecorder::new();
    let policy = metrics::with_local_recorder(&recorder, || Policy::builder("node").build());
    let _ = policy.call(|| async { Ok::<_, ()>(()) }).run().await;
    let _ = policy
        .call(|| async { Err::<(), _>(()) })
        .fail_open()
        .run()
        .await;
    let _ = policy
        .call(|| async { Err::<(), _>(()) })
        .fail_open()
        .run()
        .await;
    let snap = snapshot(&recorder);
    let status = |s| {
        value(
            &snap,
            "tollgate_policy_calls_total",
            &[("policy", "node"), ("status", s)],
        )
    };
    assert_eq!(status("success"), Some(&DebugValue::Counter(1)));
    assert_eq!(status("skipped"), Some(&DebugValue::Counter(2)));
    assert_eq!(status("failed"), Some(&DebugValue::Counter(0)));
}

/// Every success is counted once, in the window and in the metric, on each path that records
/// one: in a count window, the lock-free compare-and-swap and the success that completes the
/// minimum number of calls (a decision, under the lock); in a time window, the lock-free bucket
/// and the success that must take the lock because the window holds a failure and the bucket is
/// new; a timed call (slow-call detection, the general path); and through `Breaker::call`.
#[tokio::test]
async fn every_success_is_counted_once_on_every_path() {
    let windows = [
        ("count", SlidingWindow::Count(100), None),
        ("time", SlidingWindow::time(Duration::from_secs(60)), None),
        (
            "timed",
            SlidingWindow::time(Duration::from_secs(60)),
            Some(Duration::from_secs(1)),
        ),
    ];
    for (name, window, slow) in windows {
        let recorder = DebuggingRecorder::new();
        let clock = ManualClock::new();
        let b = metrics::with_local_recorder(&recorder, || {
            let mut config = BreakerConfig::default()
                .window(window)
                .minimum_calls(5)
                .failure_rate_threshold(50.0);
            if let Some(duration) = slow {
                config = config.slow_calls(duration, 100.0);
            }
            Breaker::with_clock(name, config, Clock::from(clock.clone())).unwrap()
        });
        // Four successes, then the fifth completes the minimum (a decision in a count window).
        for _ in 0..5 {
            b.try_acquire().unwrap().success();
        }
        // A failure held by the window: in the next bucket (one second on), a time window's
        // first success takes the lock to learn whether a success could open the breaker.
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_secs(1));
        for _ in 0..3 {
            b.try_acquire().unwrap().success();
        }
        for _ in 0..2 {
            b.call(async { Ok::<_, ()>(()) }).await.unwrap();
        }
        let totals = b.totals();
        assert_eq!((totals.calls, totals.failures), (11, 1), "{name}");
        assert_eq!(b.state(), State::Closed, "{name}");
        let snap = snapshot(&recorder);
        let calls = |outcome| {
            value(
                &snap,
                "tollgate_breaker_calls_total",
                &[("breaker", name), ("outcome", outcome)],
            )
        };
        assert_eq!(calls("success"), Some(&DebugValue::Counter(10)), "{name}");
        assert_eq!(calls("failure"), Some(&DebugValue::Counter(1)), "{name}");
    }
}
