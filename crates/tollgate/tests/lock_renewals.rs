//! `tollgate::lock` renews every live guard's lease from one task per `Locks`: no task is
//! spawned per acquisition, renewals keep their period, a lease whose renewals fail is given up
//! before it ends on the store, and the task ends with its `Locks`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tollgate::lock::{Acquisition, LockRecord, LockStore, Locks, MemoryLockStore, Release, Wait};
use tollgate::store::{Key, LostReason, Owner, Settle, StoreError, StoreErrorKind, Token};

const LEASE: Duration = Duration::from_secs(3);
const GUARDS: usize = 100;

/// A memory store that counts renewals and can fail them.
#[derive(Default)]
struct Renewing {
    store: MemoryLockStore,
    renewals: AtomicUsize,
    failing: AtomicBool,
}

impl LockStore for Renewing {
    async fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        self.store.acquire(key, owner, lease).await
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::msg(StoreErrorKind::Unavailable, "injected"));
        }
        self.store.renew(key, token, lease).await
    }

    async fn release(&self, key: &Key, token: Token) -> Result<Release, StoreError> {
        self.store.release(key, token).await
    }

    async fn read(&self, key: &Key) -> Result<Option<LockRecord>, StoreError> {
        self.store.read(key).await
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn one_task_renews_every_guard_on_time_and_ends_with_its_locks() {
    let before = alive_tasks();
    let locks = Locks::new(Renewing::default());
    let mut guards = Vec::with_capacity(GUARDS);
    for i in 0..GUARDS {
        let key = Key::new("wallet", i.to_string());
        guards.push(locks.acquire(key, LEASE, Wait::Fail).await.unwrap());
    }
    assert_eq!(
        alive_tasks(),
        before + 1,
        "one renewal task for {GUARDS} guards"
    );
    // Renewals every third of the lease: at 1 s, 2 s and 3 s.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(locks.store().renewals.load(Ordering::SeqCst), 3 * GUARDS);
    assert!(guards.iter().all(|g| g.lost().reason().is_none()));
    for guard in &guards {
        let record = locks.store().read(guard.key()).await.unwrap().unwrap();
        assert_eq!(
            record.holder(),
            Some(guard.token()),
            "still held, past the first lease"
        );
    }
    for guard in guards {
        guard.release().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        locks.store().renewals.load(Ordering::SeqCst),
        3 * GUARDS,
        "released leases are not renewed"
    );
    drop(locks);
    tokio::task::yield_now().await;
    assert_eq!(
        alive_tasks(),
        before,
        "the renewal task ended with its locks"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_lease_whose_renewals_fail_is_lost_before_it_ends_on_the_store() {
    let locks = Locks::new(Renewing::default());
    let started = Instant::now();
    let guard = locks
        .acquire(Key::new("wallet", "1"), LEASE, Wait::Fail)
        .await
        .unwrap();
    let other = locks
        .acquire(Key::new("wallet", "2"), LEASE, Wait::Fail)
        .await
        .unwrap();
    locks.store().failing.store(true, Ordering::SeqCst);
    assert_eq!(guard.lost().wait().await, LostReason::Expired);
    let told = started.elapsed();
    assert!(
        told < LEASE && told >= LEASE - LEASE / 10,
        "told at {told:?}: after nine tenths of the lease, before its end"
    );
    assert_eq!(other.lost().reason(), Some(LostReason::Expired));
    // Retried every quarter period (250 ms) from the first failure at 1 s until 2.7 s.
    let renewals = locks.store().renewals.load(Ordering::SeqCst);
    assert_eq!(renewals, 2 * 7, "{renewals} renewals");
}
