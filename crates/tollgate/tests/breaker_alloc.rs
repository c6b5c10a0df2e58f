//! The closed-state hot path allocates nothing: checked with a counting global allocator.
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use tollgate::breaker::{Breaker, BreakerConfig, Outcome, SlidingWindow};
use tollgate::policy::Policy;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn poll_ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("expected an immediately ready future"),
    }
}

// One test only in this binary: the counter is process-wide.
#[test]
fn closed_state_calls_allocate_nothing() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(64))
        .minimum_calls(64)
        .failure_rate_threshold(100.0);
    let breaker = Breaker::new("hot", config).unwrap();
    let policy = Policy::builder("hot").build();
    let work = || {
        for i in 0..10_000u32 {
            let outcome = if i % 3 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            breaker.try_acquire().unwrap().record(outcome);
            assert_eq!(poll_ready(breaker.call(async { Ok::<_, ()>(i) })), Ok(i));
            let resolution = poll_ready(policy.call(|| async { Ok::<_, ()>(i) }).run());
            assert_eq!(resolution.value(), Some(&i));
        }
    };
    work(); // warm-up: lazily initialised thread-locals may allocate once
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    work();
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst) - before, 0);
    assert_eq!(breaker.totals().calls, 64);
}
