//! Plans under concurrency and cancellation: hundreds of concurrent runs of one plan, exact
//! counts; a dropped run cancels every node and counts nothing in the breakers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

#[path = "support/plan.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::{Calls, Down, answers, fails, trip};
use tokio::sync::Barrier;
use tollgate::breaker::{Registry, State};
use tollgate::plan::{Contracts, IntentSpec, IntentStatus, NodeSpec, Outputs, Plan};
use tollgate::policy::Status;

const TASKS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_concurrent_runs_each_get_their_answer_and_every_fallback_runs() {
    let (w, l, n, fb) = <(Calls, Calls, Calls, Calls)>::default();
    let fallbacks = fb.clone();
    let plan = Plan::builder(trip())
        .node("weather", fails(&w, "weather"))
        .fallback(
            "weather",
            move |call: tollgate::plan::NodeCall<usize>, _| {
                fallbacks.hit();
                let value = format!("cached for request {}", call.input());
                async move { Ok::<_, Down>(Outputs::one("weather", value)) }
            },
        )
        .node("location", answers(&l, &["city", "country"]))
        .node("news", answers(&n, &["news"]))
        .build_in(&Registry::new())
        .unwrap();
    let plan = Arc::new(plan);
    let gate = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (plan, gate) = (plan.clone(), gate.clone());
            tokio::spawn(async move {
                gate.wait().await;
                plan.run("trip", i).await.unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, IntentStatus::Complete);
        assert_eq!(
            answer.node("weather").unwrap().status,
            Status::FallbackSuccess
        );
        assert_eq!(
            answer.field("weather").map(String::as_str),
            Some(format!("cached for request {i}").as_str()),
            "each run merges its own fields"
        );
    }
    assert_eq!(
        (w.get(), fb.get(), l.get(), n.get()),
        (TASKS, TASKS, TASKS, TASKS)
    );
}

/// Counts the node futures that were started and the ones dropped before they finished.
#[derive(Clone, Default)]
struct Lifecycle {
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_cancels_every_node_and_counts_nothing_in_the_breakers() {
    let mut contracts = Contracts::new();
    for name in ["a", "b", "c"] {
        contracts = contracts.node(NodeSpec::new(name).outputs([name]).breaker(name));
    }
    let contracts = contracts.intent(IntentSpec::new("i").required(["a", "b", "c"]));
    let registry = Registry::new();
    let life = Lifecycle::default();
    let gate = Arc::new(Barrier::new(4));
    let mut builder = Plan::<(), u8, Down>::builder(contracts);
    for name in ["a", "b", "c"] {
        let (life, gate) = (life.clone(), gate.clone());
        builder = builder.node(name, move |_| {
            let (life, gate) = (life.clone(), gate.clone());
            async move {
                let _guard = DropGuard(life.dropped.clone());
                life.started.fetch_add(1, Ordering::SeqCst);
                gate.wait().await;
                std::future::pending::<()>().await;
                Ok(Outputs::new())
            }
        });
    }
    let plan = Arc::new(builder.build_in(&registry).unwrap());
    let run = tokio::spawn({
        let plan = plan.clone();
        async move { plan.run("i", ()).await }
    });
    gate.wait().await; // every node is in flight
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert_eq!(life.started.load(Ordering::SeqCst), 3);
    assert_eq!(
        life.dropped.load(Ordering::SeqCst),
        3,
        "every node future was dropped"
    );
    for name in ["a", "b", "c"] {
        let breaker = registry.get(name);
        assert_eq!(breaker.totals().calls, 0, "a cancelled call counts nothing");
        assert_eq!(breaker.state(), State::Closed);
    }
}
