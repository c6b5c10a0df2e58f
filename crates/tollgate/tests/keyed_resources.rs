//! keyed::Resources: live-resource limit, idle eviction, cancellation and panics.
// Helpers outside #[test] functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/keyed.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{FakeClient, Gate, Server, poll_once, spawn_registered};
use tollgate::clock::{Clock, ManualClock};
use tollgate::keyed::{Error, Factory, Resources, WhenFull};

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_full_manager_fails_at_once_with_a_clear_error() {
    let server = Server::default();
    let clients = Resources::builder(server.factory())
        .max_live(2, WhenFull::Fail)
        .build();
    clients.get(&1).await.unwrap();
    clients.get(&2).await.unwrap();
    let err = clients.get(&3).await.unwrap_err();
    assert_eq!(err, Error::LimitReached { limit: 2 });
    assert_eq!(err.to_string(), "live resource limit of 2 reached");
    assert_eq!(
        server.opens.get(),
        2,
        "no connection opened beyond the limit"
    );
    assert!(clients.remove(&1).await);
    assert_eq!(clients.get(&3).await.unwrap().key, 3);
    assert_eq!(clients.len(), 2);
}

const WAIT: Duration = Duration::from_secs(5);

/// A manager limited to one live client (key 1, already created) that waits 5 s for a slot.
async fn one_slot_waiting_5s() -> (
    Server,
    Resources<u32, impl Factory<u32, Resource = FakeClient, Error = String>>,
) {
    let server = Server::default();
    let clients = Resources::builder(server.factory())
        .max_live(1, WhenFull::Wait(WAIT))
        .build();
    clients.get(&1).await.unwrap();
    (server, clients)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_full_manager_waits_until_its_deadline() {
    let (server, clients) = one_slot_waiting_5s().await;
    let started = tokio::time::Instant::now();
    let err = clients.get(&2).await.unwrap_err();
    assert_eq!(
        err,
        Error::Timeout {
            limit: 1,
            waited: WAIT
        }
    );
    assert_eq!(started.elapsed(), WAIT);
    assert_eq!(
        (clients.len(), clients.creating(), server.opens.get()),
        (1, 0, 1)
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiting_creation_proceeds_when_a_resource_is_removed() {
    let (server, clients) = one_slot_waiting_5s().await;
    let started = tokio::time::Instant::now();
    let mut second = Box::pin(clients.get(&2));
    assert!(poll_once(second.as_mut()).await.is_pending());
    tokio::task::yield_now().await; // lets the creation task reach the limit's queue
    assert_eq!(clients.creating(), 1);
    assert!(clients.remove(&1).await);
    assert_eq!(second.await.unwrap().key, 2);
    assert!(started.elapsed() < WAIT);
    assert_eq!(
        (server.opens.get(), server.closes.get(), clients.len()),
        (2, 1, 1)
    );
}

fn idle_clients(
    server: &Server,
    clock: &ManualClock,
) -> Resources<u32, impl Factory<u32, Resource = FakeClient, Error = String>> {
    Resources::builder(server.factory())
        .idle_timeout(Duration::from_secs(60))
        .max_live(2, WhenFull::Fail)
        .clock(Clock::from(clock.clone()))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_resources_are_evicted_and_closed() {
    let (server, clock) = (Server::default(), ManualClock::new());
    let clients = idle_clients(&server, &clock);
    let one = clients.get(&1).await.unwrap();
    let two = clients.get(&2).await.unwrap();
    clock.advance(Duration::from_secs(30));
    clients.get(&1).await.unwrap(); // key 1 is used again
    clock.advance(Duration::from_secs(31));
    assert_eq!(clients.evict_idle().await, 1);
    assert!(two.is_closed() && !one.is_closed());
    assert_eq!((clients.len(), server.closes.get()), (1, 1));
    assert_eq!(clients.evict_idle().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_manager_evicts_idle_resources_before_failing() {
    let (server, clock) = (Server::default(), ManualClock::new());
    let clients = idle_clients(&server, &clock);
    let one = clients.get(&1).await.unwrap();
    clients.get(&2).await.unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(clients.get(&3).await.unwrap().key, 3);
    assert!(one.is_closed());
    assert_eq!(
        (clients.len(), server.opens.get(), server.closes.get()),
        (1, 3, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unhealthy_resource_seen_by_many_callers_is_replaced_once_and_closed_once() {
    let health = Gate::new();
    let server = Server {
        health_gate: Some(health.clone()),
        ..Server::default()
    };
    let clients = Resources::new(server.factory());
    let get_first = Box::pin(clients.get(&5));
    health.open();
    let old = get_first.await.unwrap();
    health.close();
    old.break_it();
    // 200 callers all hold the old entry, stuck in its health check, before any sees it fail.
    let callers = spawn_registered(200, |_| {
        let clients = clients.clone();
        async move { clients.get(&5).await.unwrap() }
    })
    .await;
    health.open();
    let mut fresh = Vec::new();
    for caller in callers {
        fresh.push(caller.await.unwrap());
    }
    assert!(
        fresh
            .iter()
            .all(|c| Arc::ptr_eq(c, &fresh[0]) && !c.is_closed())
    );
    assert!(old.is_closed());
    assert_eq!(
        (server.opens.get(), server.closes.get()),
        (2, 1),
        "one replacement, one close"
    );
    assert_eq!((clients.len(), clients.creating()), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_get_does_not_cancel_its_creation() {
    let server = Server {
        slow: Arc::new(vec![9]),
        ..Server::default()
    };
    let clients = Resources::new(server.factory());
    {
        let mut get = Box::pin(clients.get(&9));
        assert!(poll_once(get.as_mut()).await.is_pending());
        server.waiting.wait().await;
    } // the only caller is dropped mid-creation
    server.gate.open();
    tokio::time::timeout(Duration::from_secs(30), async {
        while clients.creating() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the creation never finished");
    assert_eq!(clients.len(), 1, "the paid-for connection is cached");
    assert_eq!(clients.get(&9).await.unwrap().key, 9);
    assert_eq!(server.opens.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_factory_is_reported_and_leaves_no_state() {
    let clients: Resources<u32, _> = Resources::new(|key: &u32| {
        let key = *key;
        async move {
            if key == 0 {
                panic!("driver bug");
            }
            Server::default().factory()(&key).await
        }
    });
    let err = clients.get(&0).await.unwrap_err();
    assert_eq!(err, Error::Panicked("driver bug".to_owned()));
    assert_eq!((clients.len(), clients.creating()), (0, 0));
    assert_eq!(clients.get(&1).await.unwrap().key, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_all_closes_every_resource() {
    let server = Server::default();
    let clients = Resources::new(server.factory());
    for key in 0..20 {
        clients.get(&key).await.unwrap();
    }
    assert_eq!(clients.close_all().await, 20);
    assert_eq!(
        (clients.len(), server.opens.get(), server.closes.get()),
        (0, 20, 20)
    );
}
