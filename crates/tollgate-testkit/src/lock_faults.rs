//! Lock faults, the same on every server backend: a holder process SIGKILLed, and the server
//! SIGKILLed under holders. The backend's test starts the server, kills it and restarts it;
//! these helpers run and check the rest.

use std::time::Duration;

use tollgate::lock::{LockGuard, LockRecord, LockState, LockStore, Locks, Wait};
use tollgate::store::{Fence, Key, LostReason, Timestamp};

use crate::child::ChildTest;
use crate::lock_cases::exclusive_sections;

/// The lease of the holders these faults kill (or whose store they kill).
pub const FAULT_LEASE: Duration = Duration::from_millis(1_500);

/// The key of holder `i`.
pub fn fault_key(i: usize) -> Key {
    Key::new("faults", format!("k{i}"))
}

fn lease_until(record: Option<LockRecord>) -> Timestamp {
    match record.map(|r| r.state) {
        Some(LockState::Held { lease_until, .. }) => lease_until,
        other => panic!("expected the key held, found {other:?}"),
    }
}

/// The child's side: acquires [`fault_key`]`(0)` for [`FAULT_LEASE`], prints `LOCKED
/// <fence>`, and holds it (renewing) until it is killed.
pub async fn hold_until_killed<S: LockStore>(locks: Locks<S>) {
    let guard = locks.try_acquire(fault_key(0), FAULT_LEASE).await.unwrap();
    let guard = guard.expect("the key is free");
    println!("LOCKED {}", guard.fence().0);
    std::future::pending::<()>().await;
}

/// A holder process SIGKILLed while holding a key: the key stays held until the dead holder's
/// lease ends on the store's clock, then `locks` acquires it with the next fence.
pub async fn killed_holder_is_taken_over_after_its_lease<S: LockStore>(
    child: &mut ChildTest,
    locks: &Locks<S>,
) {
    let dead = tokio::task::block_in_place(|| child.expect("LOCKED"));
    let dead = Fence(dead.parse().expect("a fence"));
    tokio::task::block_in_place(|| child.kill());
    let lease_end = lease_until(locks.store().read(&fault_key(0)).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let next = locks.acquire(fault_key(0), FAULT_LEASE, Wait::Until(deadline));
    let next = next.await.unwrap();
    assert_eq!(next.fence(), Fence(dead.0 + 1));
    let taken_at = lease_until(locks.store().read(&fault_key(0)).await.unwrap());
    let acquired_at = Timestamp(taken_at.0 - FAULT_LEASE.as_millis() as u64);
    assert!(
        acquired_at >= lease_end,
        "acquired at {acquired_at:?}, before the dead holder's lease ended at {lease_end:?}"
    );
    next.release().await.unwrap();
}

/// The server killed under holders: 10 holders of keys `0..10` (locks from `connect` with a
/// 300 ms call timeout) when `kill` kills the store; every one is told through its lost-lease
/// signal that its lease is lost ([`LostReason::Expired`]: no renewal can succeed), each
/// before its lease ended on the store's clock. Then `restart`, and 100 tasks over those keys
/// through two new clients never overlap, with fences above the dead holders'.
pub async fn the_store_killed_under_holders<S, C, CF>(
    connect: C,
    kill: impl FnOnce(),
    restart: impl FnOnce(),
) where
    S: LockStore,
    C: Fn(Duration) -> CF,
    CF: std::future::Future<Output = Locks<S>>,
{
    let a = connect(Duration::from_millis(300)).await;
    let mut holders = Vec::new();
    for i in 0..10 {
        let guard = a.try_acquire(fault_key(i), FAULT_LEASE).await.unwrap();
        holders.push(guard.expect("a free key"));
    }
    let ends = lease_ends(&a, holders.len()).await;
    every_holder_is_told_when_the_store_dies(&holders, &ends, kill).await;
    let dead: Vec<Fence> = holders.iter().map(LockGuard::fence).collect();
    drop(holders);
    tokio::task::block_in_place(restart);
    let clients = vec![
        connect(Duration::from_secs(20)).await,
        connect(Duration::from_secs(20)).await,
    ];
    after_the_restart_no_two_holders_overlap(&clients, &dead).await;
}

/// Every one of `holders` is told its lease is lost once `kill` ran, before `lease_ends` — the
/// server runs on this machine, so its clock is the system clock.
async fn every_holder_is_told_when_the_store_dies<S: LockStore>(
    holders: &[LockGuard<S>],
    lease_ends: &[Timestamp],
    kill: impl FnOnce(),
) {
    let told: Vec<_> = holders
        .iter()
        .map(|guard| {
            let lost = guard.lost();
            tokio::spawn(async move { (lost.wait().await, Timestamp::system_now()) })
        })
        .collect();
    tokio::task::block_in_place(kill);
    for (i, (told, end)) in told.into_iter().zip(lease_ends).enumerate() {
        let (reason, at) = told.await.expect("a watcher panicked");
        assert_eq!(reason, LostReason::Expired, "holder {i}");
        assert!(
            at < *end,
            "holder {i} told at {at:?}, its lease ended at {end:?}"
        );
    }
}

/// The lease ends, on the store's clock, of keys `0..n` as `locks`'s store records them.
async fn lease_ends<S: LockStore>(locks: &Locks<S>, n: usize) -> Vec<Timestamp> {
    let mut ends = Vec::with_capacity(n);
    for i in 0..n {
        ends.push(lease_until(
            locks.store().read(&fault_key(i)).await.unwrap(),
        ));
    }
    ends
}

/// After the store's restart: 100 tasks over the keys of the `dead` holders, through
/// `clients`, never overlap, and every key's first new fence is above its dead holder's.
async fn after_the_restart_no_two_holders_overlap<S: LockStore>(
    clients: &[Locks<S>],
    dead: &[Fence],
) {
    let keys: Vec<Key> = (0..dead.len()).map(fault_key).collect();
    let fences = exclusive_sections(clients, &keys, 100).await;
    for ((key, fences), dead) in keys.iter().zip(&fences).zip(dead) {
        assert!(
            fences[0] > *dead,
            "{key}: {fences:?} after a dead holder's {dead:?}"
        );
    }
}
