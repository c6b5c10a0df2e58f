//! The shared work runs in its leader's tracing span, whether the leader polls it inline or it
//! has moved into a task, so its events carry the request that started it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/flight.rs"]
mod support;

use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use support::{Counter, Gate, gated, poll_once};
use tollgate::flight::{Flight, Role};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// An event's message and the name of the span it was emitted in.
type Recorded = (String, Option<&'static str>);

/// A subscriber that records, for each event, the name of the span it was emitted in.
#[derive(Clone, Default)]
struct SpanOfEvents {
    next_id: Arc<AtomicU64>,
    spans: Arc<Mutex<HashMap<u64, &'static Metadata<'static>>>>,
    events: Arc<Mutex<Vec<Recorded>>>,
}

thread_local! {
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl Subscriber for SpanOfEvents {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        self.spans.lock().unwrap().insert(id, span.metadata());
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let current = ENTERED.with(|entered| entered.borrow().last().copied());
        let span = current.and_then(|id| Some(self.spans.lock().unwrap().get(&id)?.name()));
        let mut message = String::new();
        event.record(
            &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                if field.name() == "message" {
                    message = format!("{value:?}");
                }
            },
        );
        self.events.lock().unwrap().push((message, span));
    }

    /// What `Span::current()` asks: the span this thread entered last.
    fn current_span(&self) -> tracing_core::span::Current {
        let current = ENTERED.with(|entered| entered.borrow().last().copied());
        match current.and_then(|id| Some((id, *self.spans.lock().unwrap().get(&id)?))) {
            Some((id, metadata)) => tracing_core::span::Current::new(Id::from_u64(id), metadata),
            None => tracing_core::span::Current::none(),
        }
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|id| *id == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}

impl SpanOfEvents {
    fn span_of(&self, message: &str) -> Option<&'static str> {
        let events = self.events.lock().unwrap();
        let (_, span) = events
            .iter()
            .find(|(m, _)| m == message)
            .unwrap_or_else(|| panic!("no event {message:?} in {events:?}"));
        *span
    }
}

// A current-thread runtime: the subscriber is the thread's default, and the work's task runs
// on that same thread.
#[tokio::test]
async fn the_work_runs_in_its_leaders_span_inline_and_after_moving_into_a_task() {
    let subscriber = SpanOfEvents::default();
    let _default = tracing::subscriber::set_default(subscriber.clone());
    let flight: Flight<&str, u32, ()> = Flight::new();

    // A lone leader runs the work inline. The turn is taken in the span and awaited outside
    // it, so the work's event is in `request-a` only because the work carries that span.
    let span = tracing::info_span!("request-a");
    let turn = {
        let _entered = span.enter();
        flight.enter("a", || async {
            tracing::info!("work a");
            Ok(1)
        })
    };
    let outcome = turn.await;
    assert_eq!((outcome.result, outcome.role), (Ok(1), Role::Leader));
    assert_eq!(subscriber.span_of("work a"), Some("request-a"));

    // A joiner from outside the span moves the work into a task, where it goes on in the
    // leader's span.
    let (runs, gate) = (Counter::default(), Gate::new());
    let span = tracing::info_span!("request-b");
    let mut leader = {
        let _entered = span.enter();
        Box::pin(flight.enter("b", || {
            let work = gated(&runs, &gate, Ok(2));
            async move {
                let value = work.await;
                tracing::info!("work b");
                value
            }
        }))
    };
    assert!(
        poll_once(leader.as_mut()).await.is_pending(),
        "waits on the gate"
    );
    let joiner = flight.run("b", || async { Ok(0) });
    let mut joiner = pin!(joiner);
    assert!(poll_once(joiner.as_mut()).await.is_pending());
    gate.open();
    let outcome = joiner.await;
    assert_eq!((outcome.result, outcome.role), (Ok(2), Role::Joiner));
    assert_eq!(leader.await.result, Ok(2));
    assert_eq!(runs.get(), 1);
    assert_eq!(subscriber.span_of("work b"), Some("request-b"));

    // Outside any span, the work's events have none.
    flight
        .run("c", || async {
            tracing::info!("work c");
            Ok(3)
        })
        .await
        .result
        .unwrap();
    assert_eq!(subscriber.span_of("work c"), None);
}

/// Logs when dropped: a destructor of the work.
struct LogOnDrop(&'static str);

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        tracing::info!("{}", self.0);
    }
}

#[tokio::test]
async fn work_aborted_with_its_leader_is_dropped_in_the_leaders_span() {
    let subscriber = SpanOfEvents::default();
    let _default = tracing::subscriber::set_default(subscriber.clone());
    let flight: Flight<&str, u32, ()> = Flight::builder().abort_when_unused(true).build();
    let (runs, gate) = (Counter::default(), Gate::new());
    let span = tracing::info_span!("request-d");
    let mut leader = {
        let _entered = span.enter();
        Box::pin(flight.enter("d", || {
            let work = gated(&runs, &gate, Ok(4));
            let guard = LogOnDrop("work d dropped");
            async move {
                let _guard = guard;
                work.await
            }
        }))
    };
    assert!(poll_once(leader.as_mut()).await.is_pending());
    // Dropped outside the span, alone: the inline work is dropped, and its abort published.
    drop(leader);
    assert_eq!(flight.len(), 0);
    assert_eq!(runs.get(), 1);
    assert_eq!(subscriber.span_of("work d dropped"), Some("request-d"));
    assert_eq!(
        subscriber.span_of("flight: shared execution aborted"),
        Some("request-d")
    );
}
