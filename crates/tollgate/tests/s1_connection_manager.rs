//! S1: the connection manager that leaked zombie connections, replayed against
//! `keyed::Resources` — one open per key under a stampede, unhealthy clients replaced and closed,
//! slow keys isolated, no state left for removed keys.
// Helpers outside #[test] functions panic on purpose, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/keyed.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{FakeClient, Server, spawn_gated, spawn_registered};
use tollgate::keyed::{Error, Factory, Resources};

/// `tasks` tasks behind one start gate, task `i` asking for key `i % keys`.
async fn stampede<F>(clients: &Resources<u32, F>, tasks: usize, keys: u32) -> Vec<Arc<FakeClient>>
where
    F: Factory<u32, Resource = FakeClient, Error = String>,
{
    let handles = spawn_gated(tasks, |i| {
        let clients = clients.clone();
        async move { clients.get(&(i as u32 % keys)).await.unwrap() }
    });
    let mut got = Vec::new();
    for handle in handles {
        got.push(handle.await.unwrap());
    }
    got
}

fn same_client_per_key(got: &[Arc<FakeClient>]) {
    for client in got {
        let first = got.iter().find(|c| c.key == client.key).unwrap();
        assert!(
            Arc::ptr_eq(first, client),
            "two clients handed out for key {}",
            client.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s1_thousand_tasks_on_ten_keys_open_exactly_ten_and_replace_unhealthy_ones() {
    let server = Server::default();
    let clients = Resources::new(server.factory());
    let got = stampede(&clients, 1_000, 10).await;
    assert_eq!(server.opens.get(), 10, "one open per key, no zombies");
    assert_eq!(server.closes.get(), 0);
    assert_eq!((clients.len(), clients.creating()), (10, 0));
    same_client_per_key(&got);

    let broken: Vec<_> = got.iter().filter(|c| c.key < 4).take(4).cloned().collect();
    for key in 0..4 {
        got.iter().find(|c| c.key == key).unwrap().break_it();
    }
    let again = stampede(&clients, 1_000, 10).await;
    same_client_per_key(&again);
    assert_eq!(
        server.opens.get(),
        14,
        "each unhealthy client replaced once"
    );
    assert_eq!(server.closes.get(), 4, "each replaced client closed once");
    assert_eq!(server.opens.get() - server.closes.get(), clients.len());
    assert!(broken.iter().all(|c| c.is_closed()));
    assert!(again.iter().all(|c| !c.is_closed()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s1_a_slow_create_for_key_a_never_delays_key_b() {
    let server = Server {
        slow: Arc::new(vec![0]),
        ..Server::default()
    };
    let clients = Resources::new(server.factory());
    let slow = clients.clone();
    let mut a = tokio::spawn(async move { slow.get(&0).await.map(|c| c.key) });
    server.waiting.wait().await; // key 0's creation has started and is stuck at the gate
    let others = spawn_gated(100, |i| {
        let (clients, key) = (clients.clone(), i as u32 + 1);
        async move { clients.get(&key).await.map(|c| c.key) }
    });
    for (key, other) in (1..=100).zip(others) {
        let got = tokio::time::timeout(Duration::from_secs(30), other).await;
        assert_eq!(got.expect("key B waited for key A").unwrap(), Ok(key));
    }
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut a).await.is_err(),
        "key A is still creating"
    );
    assert_eq!(clients.creating(), 1);
    server.gate.open();
    assert_eq!(a.await.unwrap(), Ok(0));
    assert_eq!(
        (server.opens.get(), clients.len(), clients.creating()),
        (101, 101, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s1_a_failed_creation_is_shared_with_its_waiters_and_not_cached() {
    let server = Server {
        slow: Arc::new(vec![3]),
        failing: Arc::new(vec![3]),
        ..Server::default()
    };
    let clients = Resources::new(server.factory());
    let waiters = spawn_registered(300, |_| {
        let clients = clients.clone();
        async move { clients.get(&3).await.map(|c| c.key) }
    })
    .await;
    server.gate.open();
    let refused = Err(Error::Create("connection refused for 3".to_owned()));
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), refused);
    }
    assert_eq!(server.opens.get(), 1, "one attempt, shared");
    assert_eq!(
        (clients.len(), clients.creating()),
        (0, 0),
        "the failure is not cached"
    );
    assert_eq!(clients.get(&3).await.map(|c| c.key), refused);
    assert_eq!(server.opens.get(), 2, "the next call tried again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s1_removed_keys_are_closed_and_leave_no_state() {
    let server = Server::default();
    let clients = Resources::new(server.factory());
    let got = stampede(&clients, 500, 100).await;
    assert_eq!(clients.len(), 100);
    let removers: Vec<_> = (0..100)
        .map(|key| {
            let clients = clients.clone();
            tokio::spawn(async move { clients.remove(&key).await })
        })
        .collect();
    for remover in removers {
        assert!(remover.await.unwrap());
    }
    assert!(!clients.remove(&0).await, "already removed");
    assert_eq!((server.opens.get(), server.closes.get()), (100, 100));
    assert_eq!((clients.len(), clients.creating()), (0, 0));
    assert!(got.iter().all(|c| c.is_closed()));
}
