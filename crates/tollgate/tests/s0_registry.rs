//! S0, defect 1: the breaker registry race. Two tasks asking for a new name at the same instant
//! must get the same breaker, or each copy counts failures separately and none ever opens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use tollgate::breaker::{Breaker, BreakerConfig, Registry, RegistryEvent, SlidingWindow, State};
use tollgate::clock::{Clock, ManualClock};

const TASKS: usize = 1_000;

async fn race_get(registry: &Arc<Registry>, names: &[String]) -> Vec<(String, Arc<Breaker>)> {
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (registry, start) = (registry.clone(), start.clone());
            let name = names[i % names.len()].clone();
            tokio::spawn(async move {
                start.wait().await;
                let breaker = registry.get(&name);
                (name, breaker)
            })
        })
        .collect();
    let mut got = Vec::with_capacity(TASKS);
    for task in tasks {
        got.push(task.await.unwrap());
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s0_registry_race_returns_one_breaker_per_name() {
    let registry = Arc::new(Registry::new());
    let mut events = registry.subscribe();
    for round in 0..5 {
        let names: Vec<String> = (0..10).map(|i| format!("node-{round}-{i}")).collect();
        let got = race_get(&registry, &names).await;
        let mut first: HashMap<&str, &Arc<Breaker>> = HashMap::new();
        for (name, breaker) in &got {
            let same = first.entry(name).or_insert(breaker);
            assert!(Arc::ptr_eq(same, breaker), "two breakers for {name}");
        }
        let created: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
        assert_eq!(created.len(), 10, "one Created event per fresh name");
        let unique: HashSet<_> = created
            .iter()
            .map(|e| match e {
                RegistryEvent::Created(name) => name.to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(unique, names.iter().cloned().collect());
    }
    assert_eq!(registry.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s0_failures_from_every_task_reach_one_breaker_and_open_it() {
    let config = BreakerConfig::default()
        .window(SlidingWindow::Count(TASKS as u32))
        .minimum_calls(TASKS as u32);
    let registry = Arc::new(Registry::builder().defaults(config).build().unwrap());
    let start = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (registry, start) = (registry.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let breaker = registry.get("rag");
                let _ = breaker.call(async { Err::<(), _>("rag down") }).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // With one breaker per task none would have seen the 1,000 calls it needs to decide.
    assert_eq!(registry.get("rag").state(), State::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s0_idle_eviction_never_splits_a_name_between_holders() {
    let clock = ManualClock::new();
    let registry = Arc::new(
        Registry::builder()
            .idle_ttl(Duration::ZERO)
            .clock(Clock::from(clock.clone()))
            .build()
            .unwrap(),
    );
    for _ in 0..20 {
        let stop = Arc::new(AtomicBool::new(false));
        let evictor = {
            let (registry, stop) = (registry.clone(), stop.clone());
            tokio::spawn(async move {
                let mut evicted = 0;
                while !stop.load(Ordering::SeqCst) {
                    evicted += registry.evict_idle();
                    tokio::task::yield_now().await;
                }
                evicted
            })
        };
        // Every task keeps its breaker until all have one: they must all hold the same one.
        let got = race_get(&registry, &["hot".to_string()]).await;
        stop.store(true, Ordering::SeqCst);
        evictor.await.unwrap();
        assert!(got.iter().all(|(_, b)| Arc::ptr_eq(b, &got[0].1)));
        drop(got);
        // Nobody holds it any more: now it may go.
        registry.evict_idle();
        assert!(registry.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s0_global_registry_is_one_instance() {
    let start = Arc::new(Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                Registry::global() as *const Registry as usize
            })
        })
        .collect();
    let mut addresses = HashSet::new();
    for task in tasks {
        addresses.insert(task.await.unwrap());
    }
    assert_eq!(addresses.len(), 1);
}

#[test]
fn s0_remove_reset_and_overrides() {
    let strict = BreakerConfig::default()
        .minimum_calls(1)
        .window(SlidingWindow::Count(1));
    let registry = Registry::builder()
        .config_for("strict", strict.clone())
        .build()
        .unwrap();
    let mut events = registry.subscribe();
    assert_eq!(registry.get("strict").config(), &strict);
    assert_eq!(registry.get("other").config(), &BreakerConfig::default());
    let before = registry.get("other");
    assert!(registry.remove("other"));
    assert!(!registry.remove("other"));
    assert!(
        !Arc::ptr_eq(&before, &registry.get("other")),
        "a fresh breaker after removal"
    );
    registry.reset();
    assert!(registry.is_empty());
    assert!(registry.find("strict").is_none());
    let seen: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(
        seen,
        vec![
            RegistryEvent::Created("strict".into()),
            RegistryEvent::Created("other".into()),
            RegistryEvent::Removed("other".into()),
            RegistryEvent::Created("other".into()),
            RegistryEvent::Reset,
        ]
    );
    let bad = BreakerConfig::default().minimum_calls(0);
    assert_eq!(
        Registry::builder()
            .config_for("x", bad)
            .build()
            .unwrap_err()
            .field(),
        "minimum_calls"
    );
}
