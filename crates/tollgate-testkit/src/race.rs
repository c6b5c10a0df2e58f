//! Many claimants of one key released at once.

use std::sync::Arc;

use tollgate::once::{ClaimOutcome, OnExpired, Store, Token};

use crate::cases::{T0, key, request};
use crate::gate::release_together;

/// `racers` tasks claim one key at the same instant (run it on a multi-thread runtime):
/// exactly one acquires it with fence 1, every other one is told that winner holds it.
pub async fn claim_race<S: Store>(store: S, racers: usize) {
    claim_race_across(vec![store], racers).await;
}

/// [`claim_race`] with the racers spread over several handles to one backend (connections,
/// processes' worth of clients): task `i` claims through `stores[i % stores.len()]`.
pub async fn claim_race_across<S: Store>(stores: Vec<S>, racers: usize) {
    let stores: Vec<Arc<S>> = stores.into_iter().map(Arc::new).collect();
    let store = Arc::clone(&stores[0]);
    let outcomes = release_together(racers, |owner| {
        let store = Arc::clone(&stores[owner % stores.len()]);
        async move {
            let req = request(&key(), "a", owner as u128, T0, OnExpired::TakeOver);
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
