//! Where the shared work runs: inside a lone leader's own future (no task for one caller), and in
//! a task of its own as soon as a second caller joins or the leader is dropped — so that no
//! caller ever waits on another caller being polled, and cancelling the leader never cancels
//! the work.
// Helpers outside #[test] functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/flight.rs"]
mod support;

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use support::{Counter, Gate, Shared, gated, joiners, poll_once, probed};
use tokio::sync::oneshot;
use tollgate::flight::{Error, Flight, Outcome, Role};

/// Tasks alive on the current runtime.
fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// A failing test ends here instead of hanging (not a synchronisation: the awaited futures
/// finish as soon as the test's own steps let them).
async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} never finished"))
}

#[tokio::test(flavor = "current_thread")]
async fn a_lone_leader_runs_its_work_in_its_own_future_and_a_joiner_moves_it_into_a_task() {
    let flight = Shared::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    let before = tasks();
    let mut leader = pin!(flight.run("k", || gated(&runs, &gate, Ok(9))));
    assert!(poll_once(leader.as_mut()).await.is_pending());
    assert_eq!(runs.get(), 1, "the leader's first poll ran the work");
    assert_eq!(tasks(), before, "a lone leader spawns nothing");

    let mut joiner = pin!(flight.run("k", || async { panic!("a joiner's closure ran") }));
    assert!(poll_once(joiner.as_mut()).await.is_pending());
    assert_eq!(tasks(), before + 1, "the joiner moved the work into a task");

    gate.open();
    let (led, joined) = tokio::join!(leader, joiner);
    assert_eq!((led.result, led.role), (Ok(9), Role::Leader));
    assert_eq!((joined.result, joined.role), (Ok(9), Role::Joiner));
    assert_eq!(runs.get(), 1);
    assert_eq!(flight.len(), 0);
}

/// `make` is synchronous code that can take a while (a tower service's `call`). A joiner that
/// arrives meanwhile finds no work yet to move into a task; the leader moves it as soon as it
/// has put it in place, so the joiner is served though the leader's turn is never polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_arriving_while_the_leader_makes_its_work_is_served_though_the_leader_is_never_polled()
 {
    let flight = Shared::new();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (joined_tx, joined_rx) = std::sync::mpsc::channel::<()>();
    let leading = flight.clone();
    let leader = tokio::task::spawn_blocking(move || {
        leading.enter("k", move || {
            entered_tx.send(()).unwrap();
            joined_rx.recv().unwrap(); // the joiner has taken its turn
            async { Ok(5) }
        })
    });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    let joiner = flight.enter("k", || async { panic!("a joiner's closure ran") });
    assert_eq!(joiner.role(), Role::Joiner);
    joined_tx.send(()).unwrap();
    let parked_leader = leader.await.unwrap(); // kept, never polled
    let out = bounded("the joiner", joiner).await;
    assert_eq!((out.result, out.role), (Ok(5), Role::Joiner));
    drop(parked_leader);
    assert_eq!(flight.len(), 0);
}

/// A value that counts its clones.
#[derive(Debug)]
struct Tallied {
    value: u32,
    clones: Arc<AtomicUsize>,
}

impl Clone for Tallied {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Tallied {
            value: self.value,
            clones: Arc::clone(&self.clones),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_lone_leader_takes_the_result_itself_without_a_clone() {
    let flight: Flight<&str, Tallied, ()> = Flight::new();
    let clones = Arc::new(AtomicUsize::new(0));
    for (n, value) in [7, 8].into_iter().enumerate() {
        let made = Tallied {
            value,
            clones: Arc::clone(&clones),
        };
        // Finishing at once or after a pending poll: the leader is the last holder either way.
        let yields = n == 1;
        let out = flight
            .run("k", || async move {
                if yields {
                    tokio::task::yield_now().await;
                }
                Ok(made)
            })
            .await;
        assert_eq!(out.role, Role::Leader);
        assert_eq!(out.result.map(|t| t.value), Ok(value));
    }
    assert_eq!(
        clones.load(Ordering::SeqCst),
        0,
        "nobody else held the result"
    );
    assert_eq!(flight.len(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_joiner_arriving_while_the_leader_finishes_its_work_inline_gets_the_result() {
    // A lone leader's result is handed to it unpublished. Here a caller joins from inside the
    // work's only poll (the leader is polling it inline, so the joiner cannot move it), and the
    // work finishes in that same poll: the result must still be published for the joiner.
    let flight = Shared::new();
    let joined = Arc::new(std::sync::Mutex::new(None));
    let work = {
        let (flight, joined) = (flight.clone(), Arc::clone(&joined));
        move || async move {
            let turn = flight.enter("k", || async { panic!("a joiner's closure ran") });
            assert_eq!(turn.role(), Role::Joiner);
            *joined.lock().unwrap() = Some(turn);
            Ok(12)
        }
    };
    let led = flight.run("k", work).await;
    assert_eq!((led.result, led.role), (Ok(12), Role::Leader));
    assert_eq!(flight.len(), 0);
    let mut joiner = joined
        .lock()
        .unwrap()
        .take()
        .expect("the work let a caller join");
    // Published before the leader returned: the joiner has it at its first poll.
    let Poll::Ready(outcome) = poll_once(Pin::new(&mut joiner)).await else {
        panic!("the joiner found no result: it was handed to the leader alone");
    };
    assert_eq!((outcome.result, outcome.role), (Ok(12), Role::Joiner));
}

#[tokio::test(flavor = "current_thread")]
async fn a_joiner_gone_before_the_inline_work_finishes_leaves_the_leader_its_result_uncloned() {
    // A caller joins from inside the work's last poll and leaves again before the work
    // finishes: nobody else holds the call when it ends, so the leader takes the result itself.
    let flight: Flight<&str, Tallied, ()> = Flight::new();
    let clones = Arc::new(AtomicUsize::new(0));
    let made = Tallied {
        value: 13,
        clones: Arc::clone(&clones),
    };
    let work = {
        let flight = flight.clone();
        move || async move {
            let turn = flight.enter("k", || async { panic!("a joiner's closure ran") });
            assert_eq!(turn.role(), Role::Joiner);
            drop(turn);
            Ok(made)
        }
    };
    let led = flight.run("k", work).await;
    assert_eq!(led.role, Role::Leader);
    assert_eq!(led.result.map(|t| t.value), Ok(13));
    assert_eq!(clones.load(Ordering::SeqCst), 0, "the joiner had left");
    assert_eq!(flight.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_racing_a_leader_whose_work_finishes_in_its_first_poll_all_get_its_result() {
    // A stress check: work that is ready at once finishes in its leader's first poll, where a
    // lone leader takes its result unpublished; callers joining on other threads meanwhile must
    // still get it (when one joins in that window, a result wrongly kept hangs it: the bound
    // fails the test). The window is hit by chance, a few dozen joins a run here; the
    // deterministic case is the test above that joins from inside the work's last poll.
    const ROUNDS: u64 = 300;
    const CALLERS: usize = 16;
    let flight = Shared::new();
    for round in 0..ROUNDS {
        let runs = Counter::default();
        let gate = Arc::new(tokio::sync::Barrier::new(CALLERS));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (flight, gate, runs) = (flight.clone(), Arc::clone(&gate), runs.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    flight
                        .run("k", || {
                            runs.hit();
                            async move { Ok(round) }
                        })
                        .await
                })
            })
            .collect();
        let mut led = 0;
        for task in tasks {
            let outcome = bounded("a racing caller", task).await.unwrap();
            assert_eq!(outcome.result, Ok(round));
            match outcome.role {
                Role::Leader => led += 1,
                Role::Joiner => {}
                other => panic!("unexpected role {other:?}"),
            }
        }
        assert_eq!(runs.get(), led, "one execution per leader");
        assert_eq!(flight.len(), 0);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn work_that_finishes_in_its_first_poll_leaves_nothing_behind() {
    let flight = Shared::new();
    let before = tasks();
    let outcome = flight.run("k", || async { Ok(4) }).await;
    assert_eq!((outcome.result, outcome.role), (Ok(4), Role::Leader));
    assert_eq!(flight.len(), 0);
    assert_eq!(tasks(), before);
    // Nothing to share with: the next caller leads a new execution.
    let next = flight.run("k", || async { Ok(5) }).await;
    assert_eq!((next.result, next.role), (Ok(5), Role::Leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_parked_unpolled_never_stalls_its_joiners() {
    let flight = Shared::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    // The leader starts the work, then is kept alive and never polled again (a `select!` branch
    // not taken, a buffered stream nobody drives).
    let mut leader = Box::pin(flight.run("k", || gated(&runs, &gate, Ok(7))));
    assert!(poll_once(leader.as_mut()).await.is_pending());
    let joined = joiners(&flight, 200).await;
    gate.open();
    for joiner in joined {
        let outcome = bounded("a joiner of a parked leader", joiner)
            .await
            .unwrap();
        assert_eq!((outcome.result, outcome.role), (Ok(7), Role::Joiner));
    }
    assert_eq!(runs.get(), 1);
    assert_eq!(flight.len(), 0);
    // The parked leader, polled at last, has the same result.
    let led = leader.await;
    assert_eq!((led.result, led.role), (Ok(7), Role::Leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joiner_arriving_while_the_leader_polls_the_work_still_moves_it_into_a_task() {
    let flight = Shared::new();
    let gate = Gate::new();
    // The work's first poll holds the leader inside `poll` until a joiner has registered: the
    // joiner finds the work busy and leaves it to the leader to hand over after that poll.
    let in_poll = Arc::new(std::sync::Barrier::new(2));
    let joined = Arc::new(std::sync::Barrier::new(2));
    let (parked_tx, parked_rx) = oneshot::channel();
    let leader = {
        let (flight, gate) = (flight.clone(), gate.clone());
        let (in_poll, joined) = (Arc::clone(&in_poll), Arc::clone(&joined));
        tokio::spawn(async move {
            let mut run = pin!(flight.run("k", move || async move {
                in_poll.wait();
                joined.wait();
                gate.wait().await;
                Ok(11)
            }));
            assert!(poll_once(run.as_mut()).await.is_pending());
            let _ = parked_tx.send(());
            // Parked for good: this task never polls `run` again.
            std::future::pending::<()>().await;
        })
    };
    tokio::task::spawn_blocking(move || in_poll.wait())
        .await
        .unwrap();
    let mut joiner = Box::pin(flight.run("k", || async { panic!("a joiner's closure ran") }));
    assert!(poll_once(joiner.as_mut()).await.is_pending());
    tokio::task::spawn_blocking(move || joined.wait())
        .await
        .unwrap();
    parked_rx.await.unwrap();
    gate.open();
    let outcome = bounded("the joiner of a leader parked after its poll", joiner).await;
    assert_eq!((outcome.result, outcome.role), (Ok(11), Role::Joiner));
    assert_eq!(flight.len(), 0);
    leader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_leader_dropped_hands_its_work_to_a_task_that_a_later_caller_joins() {
    let flight = Shared::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    {
        let mut leader = pin!(flight.run("k", || gated(&runs, &gate, Ok(3))));
        assert!(poll_once(leader.as_mut()).await.is_pending());
    } // the only caller is dropped with its work unfinished
    assert_eq!(flight.len(), 1, "the work goes on");
    let mut late = pin!(flight.run("k", || async { panic!("a second execution started") }));
    assert!(poll_once(late.as_mut()).await.is_pending());
    gate.open();
    let outcome = late.await;
    assert_eq!((outcome.result, outcome.role), (Ok(3), Role::Joiner));
    assert_eq!(runs.get(), 1, "nobody paid twice");
    assert_eq!(flight.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_leader_dropped_with_the_abort_option_drops_its_inline_work() {
    let flight: Shared = Flight::builder().abort_when_unused(true).build();
    let (runs, gate) = (Counter::default(), Gate::new());
    let (dropped_tx, dropped_rx) = oneshot::channel();
    {
        let mut leader = pin!(flight.run("k", || probed(&runs, &gate, dropped_tx)));
        assert!(poll_once(leader.as_mut()).await.is_pending());
    }
    let finished = bounded("dropping the abandoned work", dropped_rx).await;
    assert!(!finished.unwrap(), "the work was dropped unfinished");
    assert_eq!(flight.len(), 0);
    gate.open();
    let next = flight.run("k", || gated(&runs, &gate, Ok(2))).await;
    assert_eq!((next.result, next.role), (Ok(2), Role::Leader));
    assert_eq!(runs.get(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_in_inline_work_reaches_the_leader_and_frees_the_key() {
    let flight = Shared::new();
    let before = tasks();
    let outcome: Outcome<u64, String> = flight
        .run("k", || async move {
            tokio::task::yield_now().await;
            // Inline: no task of its own is alive while it runs.
            assert_eq!(tasks(), before, "the work runs in a task");
            panic!("inline boom")
        })
        .await;
    assert_eq!(
        (outcome.result, outcome.role),
        (Err(Error::Panicked("inline boom".to_owned())), Role::Leader)
    );
    assert_eq!(flight.len(), 0);
    let next = flight.run("k", || async { Ok(6) }).await;
    assert_eq!((next.result, next.role), (Ok(6), Role::Leader));
}

#[tokio::test(flavor = "current_thread")]
async fn with_always_in_task_a_lone_leaders_work_runs_in_a_task_of_its_own() {
    let flight: Shared = Flight::builder().always_in_task(true).build();
    let (runs, gate) = (Counter::default(), Gate::new());
    let before = tasks();
    let mut leader = pin!(flight.run("k", || gated(&runs, &gate, Ok(8))));
    assert!(poll_once(leader.as_mut()).await.is_pending());
    assert_eq!(tasks(), before + 1, "the work is a task from the start");
    gate.open();
    let led = leader.await;
    assert_eq!((led.result, led.role), (Ok(8), Role::Leader));
    assert_eq!(runs.get(), 1);
    assert_eq!(flight.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_from_another_runtime_moves_the_work_onto_the_leaders_runtime() {
    // The joiner runs in a runtime of its own that is never driven again once its
    // `block_on` returns (a sync wrapper's throw-away runtime): the work must not go there.
    let flight = Shared::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    let mut leader = Box::pin(flight.run("k", || gated(&runs, &gate, Ok(12))));
    assert!(poll_once(leader.as_mut()).await.is_pending());
    let joining = flight.clone();
    let (other_runtime, joiner) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut joiner = Box::pin(async move {
            joining
                .run("k", || async { panic!("a joiner's closure ran") })
                .await
        });
        assert!(rt.block_on(poll_once(joiner.as_mut())).is_pending());
        (rt, joiner)
    })
    .join()
    .unwrap();
    gate.open();
    let led = bounded("the leader after a joiner from another runtime", leader).await;
    assert_eq!((led.result, led.role), (Ok(12), Role::Leader));
    assert_eq!(runs.get(), 1);
    assert_eq!(flight.len(), 0);
    // The joiner, polled again, finds the result published.
    let joined = bounded("the joiner", joiner).await;
    assert_eq!((joined.result, joined.role), (Ok(12), Role::Joiner));
    tokio::task::spawn_blocking(move || drop(other_runtime))
        .await
        .unwrap();
}

#[test]
fn work_whose_leaders_runtime_has_shut_down_is_aborted_and_leaves_no_entry() {
    let flight = Shared::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let mut leader = Box::pin(flight.run("k", || gated(&runs, &gate, Ok(1))));
    assert!(first.block_on(poll_once(leader.as_mut())).is_pending());
    drop(first); // the leader's runtime is gone; the leader future lives on
    let second = runtime();
    second.block_on(async {
        let joiner = flight.run("k", || async { panic!("a joiner's closure ran") });
        let joined = bounded("a joiner of work whose runtime is gone", joiner).await;
        assert_eq!(
            (joined.result, joined.role),
            (Err(Error::Aborted), Role::Joiner)
        );
        assert_eq!(flight.len(), 0);
        let led = bounded("the leader", leader).await;
        assert_eq!(led.result, Err(Error::Aborted));
    });
    assert_eq!(runs.get(), 1);
}

/// `Flight::enter` takes the turn at once: the entry exists before any poll; a leader's turn
/// dropped unpolled leaves its work to run in a task (not dropped with it), and a turn taken
/// after that joins the work instead of making its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_takes_the_turn_before_any_poll_and_an_unpolled_leader_leaves_its_work() {
    let flight: Flight<&str, u32, ()> = Flight::new();
    let (runs, gate) = (Counter::default(), Gate::new());
    let made = AtomicUsize::new(0);
    let leader = flight.enter("k", || {
        made.fetch_add(1, Ordering::SeqCst);
        gated(&runs, &gate, Ok(1))
    });
    assert_eq!(leader.role(), Role::Leader);
    assert_eq!(flight.len(), 1, "registered without a poll");
    drop(leader); // never polled: its work moves into a task
    let joiner = flight.enter("k", || {
        made.fetch_add(1, Ordering::SeqCst);
        gated(&runs, &gate, Ok(2))
    });
    assert_eq!(joiner.role(), Role::Joiner);
    gate.open();
    let outcome = joiner.await;
    assert_eq!((outcome.result, outcome.role), (Ok(1), Role::Joiner));
    assert_eq!(
        made.load(Ordering::SeqCst),
        1,
        "the joiner's work was never made"
    );
    assert_eq!(runs.get(), 1);
    assert!(flight.is_empty());
}
