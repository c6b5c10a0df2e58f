//! `tollgate::lock` renews every live guard's lease from one task per `Locks`: no task is
//! spawned per acquisition, renewals keep their period, a lease whose renewals fail is given up
//! before it ends on the store, and the task ends with its `Locks`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tollgate::lock::{Acquisition, LockRecord, LockStore, Locks, MemoryLockStore, Release, Wait};
use tollgate::store::{Key, LostReason, Owner, Settle, StoreError, StoreErrorKind, Token};

const LEASE: Duration = Duration::from_secs(3);
const GUARDS: usize = 100;

/// A memory store that counts renewals (in all and per key) and can fail them, or leave them
/// unanswered.
#[derive(Default)]
struct Renewing {
    store: MemoryLockStore,
    renewals: AtomicUsize,
    per_key: Mutex<HashMap<Key, usize>>,
    failing: AtomicBool,
    hanging: AtomicBool,
}

impl Renewing {
    fn renewals_of(&self, key: &Key) -> usize {
        self.per_key.lock().unwrap().get(key).copied().unwrap_or(0)
    }
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
        *self.per_key.lock().unwrap().entry(key.clone()).or_default() += 1;
        if self.hanging.load(Ordering::SeqCst) {
            return std::future::pending().await;
        }
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
    for guard in &guards {
        assert_eq!(locks.store().renewals_of(guard.key()), 3, "{}", guard.key());
    }
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

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_renewal_that_never_answers_loses_the_lease_at_nine_tenths_of_it() {
    let locks = Locks::new(Renewing::default());
    let started = Instant::now();
    let guard = locks
        .acquire(Key::new("wallet", "1"), LEASE, Wait::Fail)
        .await
        .unwrap();
    locks.store().hanging.store(true, Ordering::SeqCst);
    assert_eq!(guard.lost().wait().await, LostReason::Expired);
    assert_eq!(started.elapsed(), LEASE - LEASE / 10);
    assert_eq!(
        locks.store().renewals.load(Ordering::SeqCst),
        1,
        "one renewal, never answered"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_shorter_lease_registered_after_a_longer_one_is_renewed_on_its_own_period() {
    let locks = Locks::new(Renewing::default());
    let (long, short) = (Key::new("wallet", "long"), Key::new("wallet", "short"));
    let _long = locks
        .acquire(long.clone(), Duration::from_secs(30), Wait::Fail)
        .await
        .unwrap();
    let _short = locks
        .acquire(short.clone(), Duration::from_millis(300), Wait::Fail)
        .await
        .unwrap();
    // The driver planned to look in 10 s; the short lease needs it every 100 ms.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(locks.store().renewals_of(&short), 3);
    assert_eq!(locks.store().renewals_of(&long), 0);
    assert!(_short.lost().reason().is_none());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_renewal_the_store_rejects_fires_fenced_once_and_stops_renewing() {
    let locks = Locks::new(Renewing::default());
    let key = Key::new("wallet", "1");
    let guard = locks.acquire(key.clone(), LEASE, Wait::Fail).await.unwrap();
    // Another owner releases it for us and takes it: the next renewal is fenced.
    let released = locks
        .store()
        .store
        .release(&key, guard.token())
        .await
        .unwrap();
    assert_eq!(released, Release::Released);
    let other = locks
        .store()
        .store
        .acquire(&key, Owner(7), LEASE)
        .await
        .unwrap();
    assert!(matches!(other, Acquisition::Acquired { .. }));
    assert_eq!(guard.lost().wait().await, LostReason::Fenced);
    tokio::time::sleep(LEASE * 3).await;
    assert_eq!(
        locks.store().renewals_of(&key),
        1,
        "no renewal after the loss"
    );
}

#[test]
fn a_driver_whose_runtime_is_gone_is_started_again_by_the_next_guard() {
    let paused = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let locks = Locks::new(Renewing::default());
    let first = paused();
    first.block_on(async {
        let guard = locks
            .acquire(Key::new("wallet", "a"), LEASE, Wait::Fail)
            .await;
        guard.unwrap().release().await.unwrap();
    });
    drop(first); // the renewal task ran there: it is gone with it
    let key = Key::new("wallet", "b");
    paused().block_on(async {
        let guard = locks.acquire(key.clone(), LEASE, Wait::Fail).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        assert_eq!(
            locks.store().renewals_of(&key),
            3,
            "renewed on this runtime"
        );
        assert!(guard.lost().reason().is_none());
    });
}
