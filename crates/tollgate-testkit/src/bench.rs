//! The store operations the backends' benchmarks measure, shared so every backend measures
//! the same thing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tollgate::once::{
    ClaimOutcome, ClaimRequest, Fingerprint, Key, OnExpired, Owner, Settle, Store,
};

/// The runtime every backend benchmark runs on: multi-thread, two workers (the machine's two
/// cores), timers and I/O enabled.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Claimants in [`race`].
pub const RACERS: u64 = 1_000;

/// The next key of a benchmark (`bench/<n>`).
pub fn fresh_key(counter: &AtomicU64) -> Key {
    Key::new("bench", counter.fetch_add(1, Ordering::Relaxed).to_string())
}

/// A claim of `key` by a random owner, leased for 30 s.
pub fn request(key: Key) -> ClaimRequest {
    ClaimRequest {
        key,
        fingerprint: Fingerprint::new("fp"),
        owner: Owner::random(),
        lease: Duration::from_secs(30),
        on_expired: OnExpired::TakeOver,
        waiting_for: None,
    }
}

/// Claims a fresh `key` and completes it.
pub async fn claim_complete<S: Store>(store: &S, key: Key) {
    let until = Duration::from_secs(3600);
    let ClaimOutcome::Acquired { token, .. } = store.claim(request(key.clone())).await.unwrap()
    else {
        panic!("fresh key not acquired");
    };
    let settled = store.complete(&key, token, b"42".to_vec(), until).await;
    assert_eq!(settled.unwrap(), Settle::Accepted);
}

/// [`RACERS`] spawned tasks claim `key` at once; returns when all have their answer, having
/// checked that exactly one acquired it.
pub async fn race<S: Store>(store: &Arc<S>, key: Key) {
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let (store, key) = (Arc::clone(store), key.clone());
        racers.spawn(async move { store.claim(request(key)).await.unwrap() });
    }
    let mut acquired = 0;
    while let Some(outcome) = racers.join_next().await {
        acquired += u64::from(matches!(outcome.unwrap(), ClaimOutcome::Acquired { .. }));
    }
    assert_eq!(acquired, 1);
}
