//! Overhead of the full pipeline (timeout + retry + breaker + bulkhead + fallback) on a call
//! that succeeds, against the bare call, in the same run.
//!
//! `cargo bench -p tollgate --bench policy`
#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

mod common;

use common::{op, poll_ready, poll_until_ready};
use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::breaker::{Breaker, BreakerConfig};
use tollgate::policy::{Backoff, Bulkhead, Policy, Retry};

/// Returns `Pending` once, then `Ready`: an operation that really suspends, so the timeout's
/// timer is armed and torn down as it would be around a network call.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn pipeline(c: &mut Criterion) {
    // The timeout needs a runtime's timer; entering it is enough, the future is polled here.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = rt.enter();
    let full = Policy::builder("bench")
        .timeout(Duration::from_secs(5))
        .retry(Retry::new(
            3,
            Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)),
        ))
        .breaker(Arc::new(
            Breaker::new("bench", BreakerConfig::default()).unwrap(),
        ))
        .bulkhead(Bulkhead::new(64, Duration::from_millis(10)))
        .build();
    let no_timeout = Policy::builder("bench-no-timeout")
        .retry(Retry::new(
            3,
            Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1)),
        ))
        .breaker(Arc::new(
            Breaker::new("bench2", BreakerConfig::default()).unwrap(),
        ))
        .bulkhead(Bulkhead::new(64, Duration::from_millis(10)))
        .build();

    let mut g = c.benchmark_group("policy_pipeline");
    g.bench_function("bare", |b| {
        b.iter(|| poll_ready(async { op(black_box(1)) }))
    });
    g.bench_function("five_policies", |b| {
        b.iter(|| {
            poll_ready(
                full.call(|| async { op(black_box(1)) })
                    .fallback(|_| async { Ok::<_, ()>(0) })
                    .run(),
            )
        })
    });
    g.bench_function("four_policies_no_timeout", |b| {
        b.iter(|| {
            poll_ready(
                no_timeout
                    .call(|| async { op(black_box(1)) })
                    .fallback(|_| async { Ok::<_, ()>(0) })
                    .run(),
            )
        })
    });
    g.bench_function("bare_suspending", |b| {
        b.iter(|| {
            poll_until_ready(async {
                YieldOnce(false).await;
                op(black_box(1))
            })
        })
    });
    g.bench_function("five_policies_suspending", |b| {
        b.iter(|| {
            poll_until_ready(
                full.call(|| async {
                    YieldOnce(false).await;
                    op(black_box(1))
                })
                .fallback(|_| async { Ok::<_, ()>(0) })
                .run(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
