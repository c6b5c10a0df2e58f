//! The bulkhead service's own states: what `poll_ready` reserves, what a clone shares, a full
//! bulkhead, a wait whose handle changed its bulkhead, and a handle that panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::borrow::Borrow;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tollgate::policy::Bulkhead;
use tollgate_tower::bulkhead::{BulkheadError, BulkheadLayer, BulkheadService};
use tower::{Layer, Service};

/// An upstream that counts how often it was polled ready and called.
#[derive(Clone, Default)]
struct Counted {
    readied: Arc<AtomicUsize>,
    called: Arc<AtomicUsize>,
}

impl Service<u32> for Counted {
    type Response = u32;
    type Error = Infallible;
    type Future = Ready<Result<u32, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.readied.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, n: u32) -> Self::Future {
        self.called.fetch_add(1, Ordering::SeqCst);
        ready(Ok(n))
    }
}

impl Counted {
    fn counts(&self) -> (usize, usize) {
        (
            self.readied.load(Ordering::SeqCst),
            self.called.load(Ordering::SeqCst),
        )
    }
}

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

fn ready_now<S: Service<u32>>(svc: &mut S) -> Result<(), S::Error> {
    match svc.poll_ready(&mut cx()) {
        Poll::Ready(ready) => ready,
        Poll::Pending => panic!("poll_ready was expected to be ready at once"),
    }
}

/// A service whose futures are ready at once, polled to its output.
fn output<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx()) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the call was expected to be ready at once"),
    }
}

/// The call was turned away by a bulkhead of one slot.
fn assert_turned_away(result: Result<u32, BulkheadError<Infallible>>) {
    match result {
        Err(BulkheadError::Full(full)) => assert_eq!(full.max_concurrent(), 1),
        other => panic!("expected BulkheadFull, got {other:?}"),
    }
}

/// The handle and the next call's state fit in one tag and one pointer, which the compiler
/// moves in registers (a service cloned for each request is moved right after the clone).
#[test]
fn a_service_over_the_crates_handles_is_two_words() {
    let svc = tower::service_fn(|n: u32| ready(Ok::<_, Infallible>(n)));
    assert_eq!(size_of_val(&svc), 0);
    let owned = BulkheadLayer::new(Bulkhead::new(1, Duration::ZERO)).layer(svc);
    assert_eq!(size_of_val(&owned), 2 * size_of::<usize>());
    let leaked: &'static Bulkhead = Box::leak(Box::new(Bulkhead::new(1, Duration::ZERO)));
    let by_ref = BulkheadLayer::new(leaked).layer(svc);
    assert_eq!(size_of_val(&by_ref), 2 * size_of::<usize>());
}

#[test]
fn poll_ready_reserves_a_slot_the_call_takes_and_a_clone_does_not_share() {
    let bulkhead = Bulkhead::new(2, Duration::ZERO);
    let upstream = Counted::default();
    let mut svc = BulkheadLayer::new(bulkhead.clone()).layer(upstream.clone());

    ready_now(&mut svc).unwrap();
    assert_eq!(bulkhead.available(), 1, "reserved by poll_ready");
    ready_now(&mut svc).unwrap();
    assert_eq!(
        bulkhead.available(),
        1,
        "polled again, it keeps its one slot"
    );

    let mut clone = svc.clone();
    assert_eq!(bulkhead.available(), 1, "a clone does not share the slot");
    ready_now(&mut clone).unwrap();
    assert_eq!(bulkhead.available(), 0, "the clone took its own");
    drop(clone);
    assert_eq!(bulkhead.available(), 1, "dropped, it gave its slot back");

    let call = svc.call(7);
    assert_eq!(bulkhead.available(), 1, "the call holds the reserved slot");
    assert_eq!(output(call).unwrap(), 7);
    assert_eq!(bulkhead.available(), 2, "the call gave it back");
    assert_eq!(upstream.counts(), (3, 1));

    // The service is idle again: the next poll_ready takes a new slot.
    ready_now(&mut svc).unwrap();
    assert_eq!(bulkhead.available(), 1);
    drop(svc);
    assert_eq!(bulkhead.available(), 2);
}

#[test]
fn a_full_bulkhead_turns_the_next_call_away_without_the_inner_service_then_recovers() {
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let upstream = Counted::default();
    let mut svc = BulkheadLayer::new(bulkhead.clone()).layer(upstream.clone());

    let elsewhere = bulkhead.try_acquire_owned().unwrap();
    ready_now(&mut svc).unwrap();
    assert_eq!(
        upstream.counts(),
        (0, 0),
        "turned away: the inner is not polled"
    );
    // A slot freed between poll_ready and call does not change the decision: the inner
    // service was not polled ready, so it must not be called.
    drop(elsewhere);
    assert_turned_away(output(svc.call(1)));
    assert_eq!(upstream.counts(), (0, 0));
    assert_eq!(bulkhead.available(), 1);

    ready_now(&mut svc).unwrap();
    assert_eq!(output(svc.call(2)).unwrap(), 2);
    assert_eq!(upstream.counts(), (1, 1));
    assert_eq!(bulkhead.available(), 1);
}

#[test]
fn a_call_without_poll_ready_takes_a_free_slot_or_is_turned_away() {
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let upstream = Counted::default();
    let mut svc = BulkheadLayer::new(bulkhead.clone()).layer(upstream.clone());

    let call = svc.call(3);
    assert_eq!(bulkhead.available(), 0);
    assert_turned_away(output(svc.clone().call(4)));
    assert_eq!(output(call).unwrap(), 3);
    assert_eq!((bulkhead.available(), upstream.counts()), (1, (0, 1)));
}

/// A handle that leads to bulkhead `a` until told to lead to `b` (which a handle must never
/// do; the service copes), and whose `borrow` or `clone` panics when told to.
struct Switching {
    a: Bulkhead,
    b: Bulkhead,
    to_b: Arc<AtomicBool>,
    panics: Arc<AtomicBool>,
    clone_panics: Arc<AtomicBool>,
}

impl Borrow<Bulkhead> for Switching {
    fn borrow(&self) -> &Bulkhead {
        assert!(!self.panics.load(Ordering::SeqCst), "the handle panics");
        if self.to_b.load(Ordering::SeqCst) {
            &self.b
        } else {
            &self.a
        }
    }
}

impl Clone for Switching {
    fn clone(&self) -> Self {
        assert!(
            !self.clone_panics.load(Ordering::SeqCst),
            "the clone panics"
        );
        Switching {
            a: self.a.clone(),
            b: self.b.clone(),
            to_b: Arc::clone(&self.to_b),
            panics: Arc::clone(&self.panics),
            clone_panics: Arc::clone(&self.clone_panics),
        }
    }
}

fn switching(max_wait: Duration) -> Switching {
    Switching {
        a: Bulkhead::new(1, max_wait),
        b: Bulkhead::new(1, max_wait),
        to_b: Arc::default(),
        panics: Arc::default(),
        clone_panics: Arc::default(),
    }
}

#[tokio::test]
async fn a_wait_whose_handle_changed_bulkhead_gives_the_slot_back_and_takes_one_of_the_new() {
    let handle = switching(Duration::from_secs(60));
    let upstream = Counted::default();
    let mut svc = BulkheadService::new(upstream.clone(), handle.clone());

    let held = handle.a.try_acquire_owned().unwrap();
    assert!(svc.poll_ready(&mut cx()).is_pending(), "waits for a's slot");
    handle.to_b.store(true, Ordering::SeqCst);
    drop(held);
    ready_now(&mut svc).unwrap();
    assert_eq!(
        (handle.a.available(), handle.b.available()),
        (1, 0),
        "a's slot handed back, one of b's reserved"
    );
    assert_eq!(output(svc.call(5)).unwrap(), 5);
    assert_eq!((handle.a.available(), handle.b.available()), (1, 1));
    assert_eq!(upstream.counts(), (1, 1));
}

#[test]
fn a_service_whose_handle_panicked_inside_it_says_so_when_used_again() {
    let handle = switching(Duration::ZERO);
    let mut svc = BulkheadService::new(Counted::default(), handle.clone());

    handle.panics.store(true, Ordering::SeqCst);
    let first = catch_unwind(AssertUnwindSafe(|| svc.poll_ready(&mut cx()))).unwrap_err();
    assert_eq!(first.downcast_ref::<&str>(), Some(&"the handle panics"));
    handle.panics.store(false, Ordering::SeqCst);

    assert!(format!("{svc:?}").contains("handle panicked"), "{svc:?}");
    let again = catch_unwind(AssertUnwindSafe(|| svc.poll_ready(&mut cx()))).unwrap_err();
    assert_eq!(
        again.downcast_ref::<&str>(),
        Some(&"BulkheadService used after its bulkhead handle panicked inside it")
    );
    assert_eq!(handle.a.available(), 1, "no slot was taken");
}

const GONE: &str = "BulkheadService used after its bulkhead handle panicked inside it";

/// The panic message of `f`, which must panic.
fn panic_of<R>(f: impl FnOnce() -> R) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f))
        .err()
        .expect("expected a panic");
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn a_handle_whose_clone_panics_in_call_gives_the_reserved_slot_back() {
    let handle = switching(Duration::ZERO);
    let mut svc = BulkheadService::new(Counted::default(), handle.clone());
    ready_now(&mut svc).unwrap();
    assert_eq!(handle.a.available(), 0, "reserved");

    handle.clone_panics.store(true, Ordering::SeqCst);
    assert_eq!(panic_of(|| svc.call(1)), "the clone panics");
    handle.clone_panics.store(false, Ordering::SeqCst);
    assert_eq!(handle.a.available(), 1, "the reserved slot was given back");
    assert_eq!(panic_of(|| svc.poll_ready(&mut cx())), GONE);
    assert_eq!(panic_of(|| svc.clone()), GONE);
    assert_eq!(panic_of(|| svc.call(2)), GONE);
    assert_eq!(handle.a.available(), 1);
}

#[tokio::test]
async fn a_waiting_service_keeps_its_wait_through_an_early_call_and_a_clone() {
    let bulkhead = Bulkhead::new(1, Duration::from_secs(60));
    let upstream = Counted::default();
    let mut svc = BulkheadLayer::new(bulkhead.clone()).layer(upstream.clone());
    assert!(format!("{svc:?}").contains("undecided"), "{svc:?}");

    let held = bulkhead.try_acquire_owned().unwrap();
    assert!(svc.poll_ready(&mut cx()).is_pending());
    assert!(format!("{svc:?}").contains("waiting for a slot"), "{svc:?}");
    // A call without a ready service (breaking the contract): no slot is free, it is turned
    // away at once, and the wait goes on.
    assert_turned_away(output(svc.call(1)));
    assert!(format!("{svc:?}").contains("waiting for a slot"), "{svc:?}");
    let clone = svc.clone();
    assert!(
        format!("{clone:?}").contains("undecided"),
        "a clone does not share the wait"
    );

    drop(held);
    ready_now(&mut svc).unwrap();
    assert!(format!("{svc:?}").contains("slot reserved"), "{svc:?}");
    assert_eq!(bulkhead.available(), 0);
    assert_eq!(output(svc.call(2)).unwrap(), 2);
    assert_eq!(upstream.counts(), (1, 1));
}

/// A waiter woken by a freed slot and dropped before it took it passes the slot on: the next
/// waiter gets it.
#[tokio::test]
async fn a_waiting_service_dropped_after_its_wake_up_passes_the_slot_to_the_next_waiter() {
    let bulkhead = Bulkhead::new(1, Duration::from_secs(60));
    let layer = BulkheadLayer::new(bulkhead.clone());
    let (mut first, mut second) = (
        layer.layer(Counted::default()),
        layer.layer(Counted::default()),
    );
    let held = bulkhead.try_acquire_owned().unwrap();
    assert!(first.poll_ready(&mut cx()).is_pending());
    assert!(second.poll_ready(&mut cx()).is_pending());
    drop(held); // wakes the first waiter
    drop(first);
    ready_now(&mut second).unwrap();
    assert!(
        format!("{second:?}").contains("slot reserved"),
        "{second:?}"
    );
    assert_eq!(bulkhead.available(), 0);
    drop(second);
    assert_eq!(bulkhead.available(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_runs_out_turns_the_call_away_without_the_inner_service() {
    let bulkhead = Bulkhead::new(1, Duration::from_secs(1));
    let upstream = Counted::default();
    let mut svc = BulkheadLayer::new(bulkhead.clone()).layer(upstream.clone());
    let _held = bulkhead.try_acquire_owned().unwrap();
    assert!(svc.poll_ready(&mut cx()).is_pending());
    tokio::time::advance(Duration::from_secs(1)).await;
    ready_now(&mut svc).unwrap();
    assert!(format!("{svc:?}").contains("turned away"), "{svc:?}");
    assert_turned_away(output(svc.call(1)));
    assert_eq!(
        upstream.counts(),
        (0, 0),
        "never polled ready, never called"
    );
}

#[test]
fn a_handle_whose_clone_panics_in_a_call_without_poll_ready_gives_the_slot_back() {
    let handle = switching(Duration::ZERO);
    let mut svc = BulkheadService::new(Counted::default(), handle.clone());
    handle.clone_panics.store(true, Ordering::SeqCst);
    assert_eq!(panic_of(|| svc.call(1)), "the clone panics");
    handle.clone_panics.store(false, Ordering::SeqCst);
    assert_eq!(
        handle.a.available(),
        1,
        "the slot taken for the call was given back"
    );
    assert_eq!(panic_of(|| svc.poll_ready(&mut cx())), GONE);
}

#[tokio::test]
async fn a_handle_whose_clone_panics_as_a_wait_ends_gives_the_waited_slot_back() {
    let handle = switching(Duration::from_secs(60));
    let mut svc = BulkheadService::new(Counted::default(), handle.clone());
    let held = handle.a.try_acquire_owned().unwrap();
    assert!(svc.poll_ready(&mut cx()).is_pending());
    drop(held);
    handle.clone_panics.store(true, Ordering::SeqCst);
    assert_eq!(panic_of(|| svc.poll_ready(&mut cx())), "the clone panics");
    handle.clone_panics.store(false, Ordering::SeqCst);
    assert_eq!(handle.a.available(), 1, "the waited slot was given back");
    assert_eq!(panic_of(|| svc.poll_ready(&mut cx())), GONE);
}

#[test]
fn a_refusal_shows_in_the_services_debug_output() {
    let bulkhead = Bulkhead::new(1, Duration::ZERO);
    let mut svc = BulkheadLayer::new(bulkhead.clone()).layer(Counted::default());
    let _held = bulkhead.try_acquire_owned().unwrap();
    ready_now(&mut svc).unwrap();
    assert!(format!("{svc:?}").contains("turned away"), "{svc:?}");
    assert!(
        format!("{svc:?}").contains(&format!("bulkhead: {bulkhead:?}")),
        "{svc:?}"
    );
}
