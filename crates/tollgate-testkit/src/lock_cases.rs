//! The lock conformance suite: [`LockBackend`] and one public function per case;
//! [`lock_conformance!`](crate::lock_conformance) makes one test of each.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tollgate::clock::{Clock, ManualClock};
use tollgate::lock::{
    Acquisition, LockErrorKind, LockRecord, LockState, LockStore, Locks, MemoryLockStore, Release,
    Wait,
};
use tollgate::store::{Fence, Key, LostReason, Owner, Settle, StoreError, Token};

use crate::gate::release_together;

/// The lease the store-level cases acquire with.
pub const LOCK_LEASE: Duration = Duration::from_millis(100);
/// A lease no renewal period of a running test reaches on real time.
const LONG_LEASE: Duration = Duration::from_secs(30);
const MS: Duration = Duration::from_millis(1);
/// How long a case waits for something it needs to see before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// One database of a lock backend under test, fresh for each case.
pub trait LockBackend: Send + Sync + 'static {
    /// The store type.
    type Store: LockStore + Clone;

    /// A handle onto this database's locks (a new connection for an embedded store); every
    /// handle sees the same records and the same time.
    fn connect(&self) -> impl Future<Output = Self::Store> + Send;

    /// Moves the store's time forward by `by`.
    fn advance(&self, by: Duration) -> impl Future<Output = ()> + Send;
}

/// The in-memory lock backend: one [`MemoryLockStore`] on a [`ManualClock`].
#[derive(Clone, Debug)]
pub struct MemoryLockBackend {
    store: MemoryLockStore,
    clock: ManualClock,
}

impl MemoryLockBackend {
    /// A fresh, empty store.
    pub fn new() -> Self {
        let clock = ManualClock::new();
        MemoryLockBackend {
            store: MemoryLockStore::with_clock(Clock::Manual(clock.clone())),
            clock,
        }
    }
}

impl Default for MemoryLockBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl LockBackend for MemoryLockBackend {
    type Store = MemoryLockStore;

    async fn connect(&self) -> MemoryLockStore {
        self.store.clone()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// The key the lock cases use.
pub fn lock_key() -> Key {
    Key::new("wallet", "user-1")
}

fn token(owner: u128, fence: u64) -> Token {
    Token {
        owner: Owner(owner),
        fence: Fence(fence),
    }
}

async fn acquired<S: LockStore>(store: &S, owner: u128) -> Token {
    match store.acquire(&lock_key(), Owner(owner), LOCK_LEASE).await {
        Ok(Acquisition::Acquired { token, .. }) => token,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

/// 1,000 acquire/release cycles through [`Locks`]: the fences are exactly 1, 2, …, 1,000, and
/// the released record keeps the last one.
pub async fn fence_strictly_increases_over_1000_cycles<B: LockBackend>(backend: &B) {
    let locks = Locks::new(backend.connect().await);
    for i in 1..=1_000 {
        let guard = locks.try_acquire(lock_key(), LONG_LEASE).await.unwrap();
        let guard = guard.expect("a released key is free");
        assert_eq!(guard.fence(), Fence(i), "cycle {i}");
        guard.release().await.unwrap();
    }
    let record = locks.store().read(&lock_key()).await.unwrap();
    assert_eq!(
        record,
        Some(LockRecord {
            fence: Fence(1_000),
            state: LockState::Released
        })
    );
}

/// 500 tasks released together call [`Locks::try_acquire`] on one key through 4 handles (4
/// clients, 4 connections): exactly one gets a guard, with fence 1.
pub async fn try_acquire_race_of_500_tasks_has_exactly_one_holder<B: LockBackend>(backend: &B) {
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Locks::new(backend.connect().await));
    }
    let guards = release_together(500, |i| {
        let locks = clients[i % clients.len()].clone();
        async move { locks.try_acquire(lock_key(), LONG_LEASE).await.unwrap() }
    })
    .await;
    let holders: Vec<_> = guards.iter().flatten().map(|g| g.fence()).collect();
    assert_eq!(holders, vec![Fence(1)]);
}

/// 500 tasks released together call [`LockStore::acquire`] on one key through 4 handles:
/// exactly one is answered `Acquired`, 499 are told who holds it.
pub async fn store_acquire_race_of_500_tasks_acquires_exactly_once<B: LockBackend>(backend: &B) {
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(backend.connect().await);
    }
    let answers = release_together(500, |i| {
        let store = handles[i % handles.len()].clone();
        async move {
            store
                .acquire(&lock_key(), Owner(i as u128), LOCK_LEASE)
                .await
        }
    })
    .await;
    let winners: Vec<Token> = answers
        .iter()
        .filter_map(|a| match a {
            Ok(Acquisition::Acquired { token, .. }) => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1);
    let told = answers
        .iter()
        .filter(|a| matches!(a, Ok(Acquisition::Held { holder, .. }) if *holder == winners[0]))
        .count();
    assert_eq!(told, 499);
}

/// A release by another owner, or by the holder's owner with another fence, is `NotHolder`
/// and changes nothing; a replaced guard's [`release`](tollgate::lock::LockGuard::release) is
/// the error kind [`LockErrorKind::NotHolder`].
pub async fn release_by_a_non_holder_is_rejected<B: LockBackend>(backend: &B) {
    let store = backend.connect().await;
    let held = acquired(&store, 1).await;
    let before = store.read(&lock_key()).await.unwrap();
    for other in [token(2, 1), token(1, 2), token(1, 0)] {
        let answer = store.release(&lock_key(), other).await.unwrap();
        assert_eq!(answer, Release::NotHolder, "{other:?}");
    }
    assert_eq!(store.read(&lock_key()).await.unwrap(), before);
    assert_eq!(
        store.release(&lock_key(), held).await.unwrap(),
        Release::Released
    );
    assert_eq!(
        store.release(&lock_key(), held).await.unwrap(),
        Release::NotHolder
    );

    let locks = Locks::new(backend.connect().await);
    let guard = locks.try_acquire(lock_key(), LOCK_LEASE).await.unwrap();
    let guard = guard.expect("the key was released");
    backend.advance(LOCK_LEASE).await;
    assert_eq!(acquired(&store, 3).await.fence, Fence(3));
    let refused = guard.release().await.unwrap_err();
    assert_eq!(refused.kind(), LockErrorKind::NotHolder);
    assert_eq!(
        store
            .read(&lock_key())
            .await
            .unwrap()
            .and_then(|r| r.holder()),
        Some(token(3, 3))
    );
}

/// A lease is live until its last millisecond on the store's clock and taken over exactly at
/// its end with the next fence; the old holder's renewal is then fenced.
pub async fn expired_lease_is_taken_over_at_its_end<B: LockBackend>(backend: &B) {
    let store = backend.connect().await;
    let first = acquired(&store, 1).await;
    backend.advance(LOCK_LEASE - MS).await;
    match store
        .acquire(&lock_key(), Owner(2), LOCK_LEASE)
        .await
        .unwrap()
    {
        Acquisition::Held { holder, .. } => assert_eq!(holder, first),
        other => panic!("expected the key held, got {other:?}"),
    }
    backend.advance(MS).await;
    assert_eq!(acquired(&store, 2).await, token(2, 2));
    let renewal = store.renew(&lock_key(), first, LOCK_LEASE).await.unwrap();
    assert_eq!(renewal, Settle::Fenced);
}

/// A renewal restarts the lease from the store's now: the key stays held past the first lease.
pub async fn lock_renewal_extends_only_the_holders_lease<B: LockBackend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquired(&store, 1).await;
    backend.advance(LOCK_LEASE - MS).await;
    let renewal = store.renew(&lock_key(), holder, LOCK_LEASE).await.unwrap();
    assert_eq!(renewal, Settle::Accepted);
    let stranger = store
        .renew(&lock_key(), token(2, 1), LOCK_LEASE)
        .await
        .unwrap();
    assert_eq!(stranger, Settle::Fenced);
    backend.advance(LOCK_LEASE - MS).await;
    let answer = store
        .acquire(&lock_key(), Owner(2), LOCK_LEASE)
        .await
        .unwrap();
    assert!(matches!(answer, Acquisition::Held { holder: h, .. } if h == holder));
}

/// The store lets A's lease run out on its clock and B acquires; A's next renewal (a third of
/// its lease later, on tokio's clock) is fenced and [`lost`](tollgate::lock::LockGuard::lost)
/// fires with [`LostReason::Fenced`].
///
/// A's lease is 3 s of real time, so its first renewal comes 1 s after it acquired: B's
/// take-over, a few store round trips, happens long before. Paused tokio time would not do
/// for a store that answers from another thread: while the runtime waits for that thread,
/// paused time jumps to the renewal's deadline and the loss would read as `Expired`.
pub async fn lost_signal_fires_when_the_store_fences_the_holder<B: LockBackend>(backend: &B) {
    const LEASE: Duration = Duration::from_secs(3);
    let (locks, other) = (Locks::new(backend.connect().await), backend.connect().await);
    let a = locks.try_acquire(lock_key(), LEASE).await.unwrap();
    let a = a.expect("the key is free");
    let lost = a.lost();
    assert_eq!(lost.reason(), None);
    backend.advance(LEASE).await;
    let b = match other.acquire(&lock_key(), Owner(2), LONG_LEASE).await {
        Ok(Acquisition::Acquired { token, .. }) => token,
        answer => panic!("expected B to take over, got {answer:?}"),
    };
    assert_eq!(b.fence, Fence(2));
    assert_eq!(lost.wait().await, LostReason::Fenced);
    assert_eq!(a.lost().reason(), Some(LostReason::Fenced));
}

/// With [`Wait::Until`], a waiter gets the key as soon as the holder releases it; with a
/// deadline that passes first, it gets [`LockErrorKind::TimedOut`]; with [`Wait::Fail`],
/// [`LockErrorKind::Held`]. The waiter is seen to find the key held before the holder
/// releases it, so it gets the key by waiting, not by arriving after the release.
pub async fn waiter_gets_the_key_on_release_or_times_out<B: LockBackend>(backend: &B) {
    let asked = HeldAnswers::new(backend.connect().await);
    let (holder, waiter) = (
        Locks::new(backend.connect().await),
        Locks::new(asked.clone()),
    );
    let held = holder.try_acquire(lock_key(), LONG_LEASE).await.unwrap();
    let held = held.expect("the key is free");
    let failed = waiter.acquire(lock_key(), LONG_LEASE, Wait::Fail).await;
    assert_eq!(failed.unwrap_err().kind(), LockErrorKind::Held);
    assert_eq!(asked.held(), 1, "one attempt, answered held");
    let soon = tokio::time::Instant::now() + Duration::from_millis(30);
    let timed_out = waiter
        .acquire(lock_key(), LONG_LEASE, Wait::Until(soon))
        .await;
    assert_eq!(timed_out.unwrap_err().kind(), LockErrorKind::TimedOut);
    let before = asked.held();
    assert!(before >= 2, "the timed-out waiter asked the store");

    let later = tokio::time::Instant::now() + Duration::from_secs(20);
    let waiting = tokio::spawn(async move {
        let guard = waiter
            .acquire(lock_key(), LONG_LEASE, Wait::Until(later))
            .await;
        guard.unwrap().fence()
    });
    asked.until_held(before + 1).await;
    assert!(!waiting.is_finished(), "the key is still held");
    held.release().await.unwrap();
    assert_eq!(waiting.await.unwrap(), Fence(2));
}

/// A lock store that counts the acquisitions it answered [`Acquisition::Held`], so a case can
/// wait until a waiter has found a key held.
#[derive(Clone, Debug)]
struct HeldAnswers<S> {
    inner: S,
    held: Arc<watch::Sender<usize>>,
}

impl<S: LockStore> HeldAnswers<S> {
    fn new(inner: S) -> Self {
        HeldAnswers {
            inner,
            held: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Acquisitions answered `Held` so far.
    fn held(&self) -> usize {
        *self.held.borrow()
    }

    /// Waits until `n` acquisitions have been answered `Held`; panics after [`PATIENCE`].
    async fn until_held(&self, n: usize) {
        let mut held = self.held.subscribe();
        let answered = tokio::time::timeout(PATIENCE, held.wait_for(|h| *h >= n)).await;
        assert!(
            matches!(answered, Ok(Ok(_))),
            "no {n}th acquisition answered held within {PATIENCE:?}"
        );
    }
}

impl<S: LockStore> LockStore for HeldAnswers<S> {
    async fn acquire(
        &self,
        key: &Key,
        owner: Owner,
        lease: Duration,
    ) -> Result<Acquisition, StoreError> {
        let answer = self.inner.acquire(key, owner, lease).await;
        if matches!(answer, Ok(Acquisition::Held { .. })) {
            self.held.send_modify(|h| *h += 1);
        }
        answer
    }

    async fn renew(&self, key: &Key, token: Token, lease: Duration) -> Result<Settle, StoreError> {
        self.inner.renew(key, token, lease).await
    }

    async fn release(&self, key: &Key, token: Token) -> Result<Release, StoreError> {
        self.inner.release(key, token).await
    }

    async fn read(&self, key: &Key) -> Result<Option<LockRecord>, StoreError> {
        self.inner.read(key).await
    }

    async fn hand_over(
        &self,
        key: &Key,
        from: Token,
        to: Owner,
        lease: Duration,
    ) -> Result<Option<Acquisition>, StoreError> {
        self.inner.hand_over(key, from, to, lease).await
    }
}

/// [`LockStore::hand_over`] moves the key from its holder to the next owner with the next
/// fence and a lease from the store's now, in one step: a non-holder's hand-over changes
/// nothing; the old holder is then fenced (renew, release), the new one holds until its lease
/// ends.
pub async fn hand_over_moves_the_key_to_the_next_owner_with_the_next_fence<B: LockBackend>(
    backend: &B,
) {
    let store = backend.connect().await;
    let first = acquired(&store, 1).await;
    let before = store.read(&lock_key()).await.unwrap();
    let key = lock_key();
    let stranger = store.hand_over(&key, token(2, 1), Owner(3), LOCK_LEASE);
    assert_eq!(stranger.await.unwrap(), None);
    assert_eq!(store.read(&lock_key()).await.unwrap(), before);
    backend.advance(LOCK_LEASE / 2).await;
    let handed = store.hand_over(&key, first, Owner(3), LOCK_LEASE);
    let next = match handed.await.unwrap() {
        Some(Acquisition::Acquired { token, .. }) => token,
        other => panic!("expected the key handed over, got {other:?}"),
    };
    assert_eq!(next, token(3, 2));
    let renewal = store.renew(&lock_key(), first, LOCK_LEASE).await.unwrap();
    assert_eq!(renewal, Settle::Fenced);
    assert_eq!(
        store.release(&lock_key(), first).await.unwrap(),
        Release::NotHolder
    );
    backend.advance(LOCK_LEASE - MS).await;
    let answer = store.acquire(&lock_key(), Owner(4), LOCK_LEASE).await;
    assert!(matches!(answer.unwrap(), Acquisition::Held { holder, .. } if holder == next));
    backend.advance(MS).await;
    assert_eq!(acquired(&store, 4).await, token(4, 3));
}

/// The keys of [`mutual_exclusion_of_1000_tasks_over_10_keys`].
const LOAD_KEYS: usize = 10;

/// 1,000 tasks released together by a start gate, over 10 keys and 4 handles (4 clients: each
/// hand-off between clients goes through the store), each acquiring with [`Wait::Until`] and
/// counting "holders now" of its key inside the critical section: never more than one holder
/// of a key at once, the fences of each key strictly increase in the order the holders
/// entered, and exactly 1,000 critical sections completed (100 per key).
pub async fn mutual_exclusion_of_1000_tasks_over_10_keys<B: LockBackend>(backend: &B) {
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Locks::new(backend.connect().await));
    }
    let keys: Vec<Key> = (0..LOAD_KEYS)
        .map(|k| Key::new("wallet", format!("user-{k}")))
        .collect();
    let fences = exclusive_sections(&clients, &keys, 1_000).await;
    assert!(fences.iter().all(|f| f.len() == 100));
}

/// Runs `tasks` critical sections released together, task `i` on `keys[i % keys.len()]`
/// through `clients[i % clients.len()]`, each counting the holders of its key inside; asserts
/// that no two ever held a key at once, that every section completed, and that each key's
/// fences strictly increase in the order its holders entered. Returns those fences, per key.
pub async fn exclusive_sections<S: LockStore>(
    clients: &[Locks<S>],
    keys: &[Key],
    tasks: usize,
) -> Vec<Vec<Fence>> {
    let holders: Arc<Vec<AtomicUsize>> = Arc::new(keys.iter().map(|_| 0.into()).collect());
    let most = Arc::new(AtomicUsize::new(0));
    let fences: Arc<Vec<std::sync::Mutex<Vec<Fence>>>> =
        Arc::new(keys.iter().map(|_| Default::default()).collect());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let completed = release_together(tasks, |i| {
        let locks = clients[i % clients.len()].clone();
        let (k, key) = (i % keys.len(), keys[i % keys.len()].clone());
        let (holders, most, fences) =
            (Arc::clone(&holders), Arc::clone(&most), Arc::clone(&fences));
        async move {
            let guard = locks.acquire(key, LONG_LEASE, Wait::Until(deadline)).await;
            let guard = guard.unwrap();
            let now = holders[k].fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            fences[k].lock().unwrap().push(guard.fence());
            tokio::task::yield_now().await; // others run while this one holds the key
            holders[k].fetch_sub(1, Ordering::SeqCst);
            guard.release().await.unwrap();
            1_usize
        }
    })
    .await;
    assert_eq!(completed.iter().sum::<usize>(), tasks);
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "two holders of one key at once"
    );
    let fences: Vec<Vec<Fence>> = fences.iter().map(|f| f.lock().unwrap().clone()).collect();
    for (key, fences) in keys.iter().zip(&fences) {
        assert!(
            fences.windows(2).all(|w| w[0] < w[1]),
            "{key}: fences not strictly increasing: {fences:?}"
        );
    }
    fences
}
