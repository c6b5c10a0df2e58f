//! S2, the vending machine, in memory: balance 1,000, drink 1,000, 100 concurrent purchases
//! released by a start gate sell exactly one drink — with optimistic versioning and with a
//! per-key pessimistic lock — and a stale write is rejected by version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::{Arc, Mutex};

use tollgate::keyed;
use tollgate::versioned::{self, VersionedCell, update_with_retry};
use tollgate_testkit::release_together;

const PURCHASES: usize = 100;
const PRICE: u64 = 1_000;

#[derive(Debug, PartialEq)]
struct InsufficientFunds;

/// Releases `PURCHASES` purchases at once; returns how many succeeded.
async fn race<F, Fut>(purchase: F) -> usize
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let sold = release_together(PURCHASES, |_| purchase()).await;
    sold.into_iter().filter(|sold| *sold).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_optimistic_versioning_sells_one_drink_to_100_concurrent_buyers() {
    let wallet = Arc::new(VersionedCell::new(1_000_u64));
    let sold = race(|| {
        let wallet = Arc::clone(&wallet);
        async move {
            let outcome = update_with_retry(
                PURCHASES as u32,
                || async { Ok(wallet.get()) },
                |balance: &u64| balance.checked_sub(PRICE).ok_or(InsufficientFunds),
                |version, balance| {
                    let wallet = Arc::clone(&wallet);
                    async move {
                        tokio::task::yield_now().await; // the gap between GET and UPDATE
                        Ok(wallet.compare_and_set(version, balance))
                    }
                },
            )
            .await;
            match outcome {
                Ok(_) => true,
                Err(versioned::Error::Failed(InsufficientFunds)) => false,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(sold, 1);
    let after = wallet.get();
    assert_eq!((after.value, after.version), (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_pessimistic_keyed_lock_sells_one_drink_to_100_concurrent_buyers() {
    // A plain balance with a GET, a pause and an UPDATE: only the per-key lock makes it safe.
    let balance = Arc::new(Mutex::new(1_000_u64));
    let locks = keyed::Mutex::new();
    let sold = race(|| {
        let (balance, locks) = (Arc::clone(&balance), locks.clone());
        async move {
            let _wallet = locks.lock("wallet-1").await;
            let seen = *balance.lock().unwrap();
            tokio::task::yield_now().await;
            if seen < PRICE {
                return false;
            }
            *balance.lock().unwrap() = seen - PRICE;
            true
        }
    })
    .await;
    assert_eq!(sold, 1);
    assert_eq!(*balance.lock().unwrap(), 0);
    assert_eq!(locks.len(), 0, "no lock state left behind");
}

#[tokio::test]
async fn s2_stale_write_arriving_after_a_newer_one_is_rejected_by_version() {
    let wallet = VersionedCell::new(1_000_u64);
    let old = wallet.get(); // "set balance to 1,000" was computed here...
    let newer = wallet.get();
    assert!(wallet.compare_and_set(newer.version, 0)); // ..."set to 0" lands first
    assert!(
        !wallet.compare_and_set(old.version, 1_000),
        "the stale write loses"
    );
    let after = wallet.get();
    assert_eq!((after.value, after.version), (0, 1));
}
