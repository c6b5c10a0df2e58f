//! The optional result cache: per-outcome TTLs on paused tokio time.

use std::time::Duration;

use tollgate::flight::{CachePolicy, Error, Flight, Role};

type Shared = Flight<&'static str, u64, String>;

fn cached_flight() -> Shared {
    let policy =
        CachePolicy::successes_for(Duration::from_secs(10)).failures_for(Duration::from_secs(1));
    Flight::builder().cache(policy).build()
}

async fn call(flight: &Shared, result: Result<u64, String>) -> (Result<u64, Error<String>>, Role) {
    let outcome = flight.run("k", move || async move { result }).await;
    (outcome.result, outcome.role)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_success_is_served_from_the_cache_until_its_ttl_expires() {
    let flight = cached_flight();
    assert_eq!(call(&flight, Ok(1)).await, (Ok(1), Role::Leader));
    tokio::time::advance(Duration::from_millis(9_999)).await;
    assert_eq!(call(&flight, Ok(2)).await, (Ok(1), Role::Cached));
    assert_eq!(flight.len(), 0, "a cached result is not an in-flight entry");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(call(&flight, Ok(3)).await, (Ok(3), Role::Leader));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failure_is_cached_for_less_time_than_a_success() {
    let flight = cached_flight();
    let failed = Err(Error::Failed("down".to_owned()));
    assert_eq!(
        call(&flight, Err("down".to_owned())).await,
        (failed.clone(), Role::Leader)
    );
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(call(&flight, Ok(2)).await, (failed, Role::Cached));
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(call(&flight, Ok(2)).await, (Ok(2), Role::Leader));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn panics_are_never_cached_and_expired_entries_are_purged() {
    let flight = cached_flight();
    let panicked = flight.run("p", || async { panic!("once") }).await;
    assert_eq!(
        panicked.result,
        Err::<u64, _>(Error::Panicked("once".to_owned()))
    );
    let next = flight.run("p", || async { Ok(4) }).await;
    assert_eq!((next.result, next.role), (Ok(4), Role::Leader));
    assert_eq!(flight.purge_expired(), 1);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(flight.purge_expired(), 0, "nothing outlives its TTL");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn without_a_policy_nothing_is_cached() {
    let flight = Shared::new();
    assert_eq!(call(&flight, Ok(1)).await, (Ok(1), Role::Leader));
    assert_eq!(call(&flight, Ok(2)).await, (Ok(2), Role::Leader));
    assert_eq!(flight.purge_expired(), 0);
}

/// A key whose hash panics on its `panics_at`-th use, counted across its clones.
#[derive(Clone)]
struct Fragile {
    hashes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    panics_at: usize,
}

impl std::hash::Hash for Fragile {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let n = self
            .hashes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        assert!(n != self.panics_at, "the key's hash failed");
        0u8.hash(state);
    }
}

impl PartialEq for Fragile {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Fragile {}

/// The leader looks in the cache again once its entry exists (a result may have been cached
/// meanwhile): user code (the key's hash, the clock). A panic there reaches the call's callers
/// as `Panicked` and frees the key, rather than leaving an entry no work will ever finish.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_panic_while_the_leader_looks_in_the_cache_reaches_its_callers_and_frees_the_key() {
    let flight: Flight<Fragile, u64, String> = Flight::builder()
        .cache(CachePolicy::successes_for(Duration::from_secs(10)))
        .build();
    // An empty cache hashes a key once (for its shard), the flight's map once, and the
    // leader's second look in the cache is the third.
    let key = Fragile {
        hashes: std::sync::Arc::default(),
        panics_at: 3,
    };
    let first = flight.run(key.clone(), || async { Ok(1) }).await;
    assert!(
        matches!(&first.result, Err(Error::Panicked(m)) if m.contains("the key's hash failed")),
        "{:?}",
        first.result
    );
    assert_eq!(flight.len(), 0, "the key is free");
    let second = tokio::time::timeout(Duration::from_secs(30), flight.run(key, || async { Ok(2) }))
        .await
        .expect("the next caller leads a new call instead of joining a dead one");
    assert_eq!((second.result, second.role), (Ok(2), Role::Leader));
}
