//! S2 across processes, the same schedule on every backend: holder A — a child process — locks
//! the wallet and reads its balance, then is **paused with SIGSTOP** past its lease; B locks it
//! after A's lease ran out on the store's clock and buys a drink; A is resumed and writes its
//! stale balance. The backend's test supplies the lock, the read and the write (naive or
//! fenced); these helpers run the schedule on both sides.

use std::future::Future;
use std::time::Duration;

use tollgate::lock::{LockState, LockStore, Locks, Wait};
use tollgate::store::{Fence, Key, LeaseLost, LostReason, Timestamp};

use crate::child::{ChildTest, next_line};

/// The wallet's balance before the schedule.
pub const START_BALANCE: i64 = 1_000;
/// What A deposits (from its stale read).
pub const DEPOSIT: i64 = 500;
/// What B's drink costs.
pub const PRICE: i64 = 1_000;
/// A's lease: long enough to lock and read on a loaded machine, short for the test.
pub const HOLDER_LEASE: Duration = Duration::from_millis(1_500);

/// The wallet's lock key.
pub fn wallet_key() -> Key {
    Key::new("wallet", "1")
}

/// What the paused holder A reported once resumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PausedWrite {
    /// A's fence (0 for a lock without fences).
    pub fence: u64,
    /// Whether A's stale write changed the wallet.
    pub applied: bool,
    /// How A's lost-lease signal fired (`Expired`, `Fenced`), `none` if it did not within 10 s,
    /// `-` for a lock without one.
    pub lost: String,
}

/// The parent's side: waits until A locked and read, pauses it, runs `next_holder` (B: lock,
/// read, buy, release) while A is stopped, resumes A and tells it to write.
pub async fn pause_the_holder_while<F: Future<Output = ()>>(
    child: &mut ChildTest,
    next_holder: F,
) -> PausedWrite {
    let fence = blocking(|| child.expect("LOCKED"));
    let _read = blocking(|| child.expect("READ"));
    child.pause();
    next_holder.await;
    child.resume();
    blocking(|| {
        child.send("WRITE");
        PausedWrite {
            fence: fence.parse().expect("a fence"),
            applied: child.expect("APPLIED") == "true",
            lost: child.expect("LOST"),
        }
    })
}

/// The child's side (holder A): prints its fence, reads and prints the balance, waits for the
/// parent's `WRITE` (it is paused meanwhile), writes `read + DEPOSIT` with `write` and prints
/// whether it applied, then how its lost-lease signal fired, if it has one.
pub async fn paused_holder<R, W, WF>(fence: Fence, read: R, write: W, lost: Option<LeaseLost>)
where
    R: Future<Output = i64>,
    W: FnOnce(i64) -> WF,
    WF: Future<Output = bool>,
{
    println!("LOCKED {}", fence.0);
    let balance = read.await;
    println!("READ {balance}");
    let go = tokio::task::spawn_blocking(next_line)
        .await
        .expect("read stdin");
    assert_eq!(go, "WRITE");
    let applied = write(balance + DEPOSIT).await;
    println!("APPLIED {applied}");
    let lost = match lost {
        Some(lost) => match tokio::time::timeout(Duration::from_secs(10), lost.wait()).await {
            Ok(reason) => format!("{reason:?}"),
            Err(_) => "none".to_owned(),
        },
        None => "-".to_owned(),
    };
    println!("LOST {lost}");
    let _ = tokio::task::spawn_blocking(next_line).await;
}

fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// The store paused instead of the holder: A (locks from `connect` with a 300 ms call
/// timeout) holds the wallet and read it when `pause` stops the server; no renewal can
/// succeed, so A's lost-lease signal fires ([`LostReason::Expired`]) **before its lease ended
/// on the store's clock** (the server runs on this machine: its clock is the system clock).
/// After `resume`, B acquires with fence 2 and buys; A's late write is rejected (`write` must
/// be fenced) and the balance is `START_BALANCE - PRICE`.
pub async fn told_before_the_lease_ends_while_the_store_is_paused<S, C, CF, R, RF, W, WF>(
    connect: C,
    pause: impl FnOnce(),
    resume: impl FnOnce(),
    read: R,
    write: W,
) where
    S: LockStore,
    C: Fn(Duration) -> CF,
    CF: Future<Output = Locks<S>>,
    R: Fn() -> RF,
    RF: Future<Output = i64>,
    W: Fn(Fence, i64) -> WF,
    WF: Future<Output = bool>,
{
    let (a, b) = (
        connect(Duration::from_millis(300)).await,
        connect(Duration::from_secs(20)).await,
    );
    let a_guard = a.try_acquire(wallet_key(), HOLDER_LEASE).await.unwrap();
    let a_guard = a_guard.expect("the wallet's lock is free");
    let record = a.store().read(&wallet_key()).await.unwrap().unwrap();
    let LockState::Held { lease_until, .. } = record.state else {
        panic!("A holds the key: {record:?}");
    };
    let a_read = read().await;

    tokio::task::block_in_place(pause);
    let reason = a_guard.lost().wait().await;
    let told_at = Timestamp::system_now();
    assert_eq!(reason, LostReason::Expired);
    assert!(
        told_at < lease_until,
        "told at {told_at:?}, at or after the lease's end {lease_until:?} on the store's clock"
    );
    tokio::task::block_in_place(resume);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let b_guard = b.acquire(wallet_key(), HOLDER_LEASE, Wait::Until(deadline));
    let b_guard = b_guard.await.unwrap();
    assert_eq!(b_guard.fence(), Fence(2));
    let b_read = read().await;
    assert!(write(b_guard.fence(), b_read - PRICE).await);
    let stale = write(a_guard.fence(), a_read + DEPOSIT).await;
    assert!(!stale, "A's write after its loss is rejected");
    assert_eq!(read().await, START_BALANCE - PRICE);
}
