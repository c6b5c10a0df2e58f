//! Many claimants of one key released at once.

use std::sync::Arc;

use tollgate::once::{ClaimOutcome, OnExpired, Store, Token};

use crate::backend::Backend;
use crate::cases::{key, request};
use crate::gate::release_together;

/// `racers` tasks claim one key at the same instant through `handles` handles of the backend
/// (connections, processes' worth of clients; run it on a multi-thread runtime): exactly one
/// acquires it with fence 1, every other one is told that winner holds it.
pub async fn claim_race<B: Backend>(backend: &B, handles: usize, racers: usize) {
    let mut stores = Vec::with_capacity(handles);
    for _ in 0..handles.max(1) {
        stores.push(Arc::new(backend.connect().await));
    }
    let store = Arc::clone(&stores[0]);
    let outcomes = release_together(racers, |owner| {
        let store = Arc::clone(&stores[owner % stores.len()]);
        async move {
            let req = request(&key(), "a", owner as u128, OnExpired::TakeOver);
            store.claim(req).await.unwrap()
        }
    })
    .await;
    let mut winners: Vec<Token> = Vec::new();
    let mut holders: Vec<Token> = Vec::new();
    for outcome in outcomes {
        match outcome {
            ClaimOutcome::Acquired { token, took_over } => {
                assert_eq!(took_over, None);
                winners.push(token);
            }
            ClaimOutcome::InProgress { holder, .. } => holders.push(holder),
            other => panic!("unexpected claim outcome {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim acquires the key");
    assert_eq!(winners[0].fence.0, 1);
    assert_eq!(holders.len(), racers - 1);
    assert!(
        holders.iter().all(|h| *h == winners[0]),
        "all see the winner"
    );
    let record = store.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.holder(), Some(winners[0]));
}
