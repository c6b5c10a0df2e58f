//! Closed-state overhead of one guarded call, against a bare call and against the `recloser`
//! and `failsafe` crates, all in the same run.
//!
//! `cargo bench -p tollgate --bench breaker`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod common;

use common::{op, poll_ready};
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use tollgate::breaker::{Breaker, BreakerConfig, Outcome, SlidingWindow};
use tollgate::clock::Clock;

fn closed_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_closed_call");
    g.bench_function("bare", |b| b.iter(|| op(black_box(1))));
    g.bench_function("bare_async", |b| {
        b.iter(|| poll_ready(async { op(black_box(1)) }))
    });

    let breaker = Breaker::new("bench", BreakerConfig::default()).unwrap();
    g.bench_function("tollgate_permit", |b| {
        b.iter(|| {
            let permit = breaker.try_acquire().unwrap();
            let result = op(black_box(1));
            permit.record(if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            });
            result
        })
    });
    g.bench_function("tollgate_permit_in_async_block", |b| {
        b.iter(|| {
            poll_ready(async {
                let permit = breaker.try_acquire().unwrap();
                let result = async { op(black_box(1)) }.await;
                permit.record(if result.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                });
                result
            })
        })
    });
    g.bench_function("tollgate_call", |b| {
        b.iter(|| poll_ready(breaker.call(async { op(black_box(1)) })))
    });
    g.bench_function("tollgate_call_is_ok", |b| {
        b.iter(|| poll_ready(breaker.call(async { op(black_box(1)) })).is_ok())
    });

    let windowed = BreakerConfig::default().window(SlidingWindow::time(Duration::from_secs(60)));
    let windowed = Breaker::new("bench-windowed", windowed).unwrap();
    g.bench_function("tollgate_call_time_window", |b| {
        b.iter(|| poll_ready(windowed.call(async { op(black_box(1)) })))
    });

    // A window holding one failure: a success cannot open the breaker (at the minimum of 100
    // calls, 1 failure is 1 %), so it still skips the lock. (Before, every success took the
    // lock while the window held a failure: 226-249 ns a call.) An hour long, so that the
    // failure is still in the window however long the benchmark runs, in 600 buckets of 6 s,
    // which this loop (~20 M calls a second) does not fill (a bucket counts 2^28 - 1 plain
    // successes without the lock).
    let hour = SlidingWindow::time(Duration::from_secs(3_600));
    let failed_once = BreakerConfig::default().window(hour);
    let failed_once = Breaker::new("bench-failed-once", failed_once).unwrap();
    failed_once.try_acquire().unwrap().record(Outcome::Failure);
    g.bench_function("tollgate_call_time_window_holding_a_failure", |b| {
        b.iter(|| poll_ready(failed_once.call(async { op(black_box(1)) })))
    });
    let failed_coarse = BreakerConfig::default().window(hour);
    let failed_coarse =
        Breaker::with_clock("bench-failed-coarse", failed_coarse, Clock::Coarse).unwrap();
    failed_coarse
        .try_acquire()
        .unwrap()
        .record(Outcome::Failure);
    g.bench_function(
        "tollgate_call_time_window_holding_a_failure_coarse_clock",
        |b| b.iter(|| poll_ready(failed_coarse.call(async { op(black_box(1)) }))),
    );

    let timed = BreakerConfig::default()
        .window(SlidingWindow::time(Duration::from_secs(60)))
        .slow_calls(Duration::from_secs(5), 100.0);
    let timed = Breaker::new("bench-timed", timed).unwrap();
    g.bench_function("tollgate_call_time_window_slow_calls", |b| {
        b.iter(|| poll_ready(timed.call(async { op(black_box(1)) })))
    });

    // The same two breakers reading the kernel's coarse clock (`Clock::Coarse`).
    let coarse = BreakerConfig::default().window(SlidingWindow::time(Duration::from_secs(60)));
    let coarse = Breaker::with_clock("bench-coarse", coarse, Clock::Coarse).unwrap();
    g.bench_function("tollgate_call_time_window_coarse_clock", |b| {
        b.iter(|| poll_ready(coarse.call(async { op(black_box(1)) })))
    });
    let coarse_timed = BreakerConfig::default()
        .window(SlidingWindow::time(Duration::from_secs(60)))
        .slow_calls(Duration::from_secs(5), 100.0);
    let coarse_timed =
        Breaker::with_clock("bench-coarse-timed", coarse_timed, Clock::Coarse).unwrap();
    g.bench_function("tollgate_call_time_window_slow_calls_coarse_clock", |b| {
        b.iter(|| poll_ready(coarse_timed.call(async { op(black_box(1)) })))
    });

    // The same window in 100 ms buckets. (A bucket counts up to 2^28 - 1 plain successes on
    // the lock-free path; before it was 2^24 - 1, which a one-second bucket overflowed at this
    // loop's ≈ 20 M calls/s — these rows were how that was found.)
    let fine = SlidingWindow::Time {
        length: Duration::from_secs(60),
        buckets: 600,
    };
    let fine_tokio = Breaker::new("bench-fine", BreakerConfig::default().window(fine)).unwrap();
    g.bench_function("tollgate_call_time_window_600_buckets", |b| {
        b.iter(|| poll_ready(fine_tokio.call(async { op(black_box(1)) })))
    });
    let fine_coarse = Breaker::with_clock(
        "bench-fine-coarse",
        BreakerConfig::default().window(fine),
        Clock::Coarse,
    )
    .unwrap();
    g.bench_function("tollgate_call_time_window_600_buckets_coarse_clock", |b| {
        b.iter(|| poll_ready(fine_coarse.call(async { op(black_box(1)) })))
    });

    let recloser = recloser::Recloser::default();
    g.bench_function("recloser", |b| {
        b.iter(|| recloser.call(|| op(black_box(1))))
    });

    let failsafe = failsafe::Config::new().build();
    g.bench_function("failsafe", |b| {
        b.iter(|| failsafe.call(|| op(black_box(1))))
    });
    g.finish();
}

/// What the breaker rows are built from, on this machine, in the same run: a compare-and-swap
/// (a count window's success is one) and a read of each clock (a time window's success reads
/// one; with slow-call detection, two). They differ up to about 2–3× between machines
/// (`docs/PERFORMANCE.md`, session 13).
fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_floor");
    let word = AtomicU64::new(0);
    g.bench_function("atomic_compare_exchange", |b| {
        b.iter(|| {
            let word = black_box(&word);
            let current = word.load(Ordering::Acquire);
            word.compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
        })
    });
    for (name, clock) in [
        ("clock_tokio", Clock::Tokio),
        ("clock_coarse", Clock::Coarse),
    ] {
        g.bench_function(name, |b| b.iter(|| black_box(&clock).now()));
    }
    g.finish();
}

fn registry_get(c: &mut Criterion) {
    let registry = tollgate::breaker::Registry::new();
    for i in 0..100 {
        registry.get(&format!("node-{i}"));
    }
    c.bench_function("registry_get_existing", |b| {
        b.iter(|| registry.get(black_box("node-42")))
    });
}

criterion_group!(benches, closed_call, floor, registry_get);
criterion_main!(benches);
