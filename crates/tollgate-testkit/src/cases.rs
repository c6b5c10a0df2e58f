//! One public function per semantic of a store; [`crate::conformance`] runs them all.

use std::time::Duration;

use tollgate::once::{
    ClaimOutcome, ClaimRequest, Fence, Fingerprint, Key, OnExpired, Owner, RecordState, Settle,
    Store, Timestamp, Token,
};

/// The time the cases start at (milliseconds since the epoch, any value works).
pub const T0: Timestamp = Timestamp(1_700_000_000_000);
/// The lease the cases claim with.
pub const LEASE: Duration = Duration::from_millis(100);

/// The key most cases use.
pub fn key() -> Key {
    Key::new("report", "user-1/2026-11-21")
}

/// A claim of `key` with fingerprint `fp` by `owner` at `now`, leased for [`LEASE`].
pub fn request(key: &Key, fp: &str, owner: u128, now: Timestamp, on: OnExpired) -> ClaimRequest {
    ClaimRequest {
        key: key.clone(),
        fingerprint: Fingerprint::new(fp),
        owner: Owner(owner),
        lease_until: now.plus(LEASE),
        now,
        on_expired: on,
    }
}

/// Claims [`key`] with fingerprint "a" at `now` and returns the acquired token.
pub async fn acquire<S: Store>(store: &S, owner: u128, now: Timestamp) -> Token {
    match store
        .claim(request(&key(), "a", owner, now, OnExpired::TakeOver))
        .await
        .unwrap()
    {
        ClaimOutcome::Acquired { token, .. } => token,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

fn token(owner: u128, fence: u64) -> Token {
    Token {
        owner: Owner(owner),
        fence: Fence(fence),
    }
}

async fn claim<S: Store>(store: &S, fp: &str, owner: u128, now: Timestamp) -> ClaimOutcome {
    let req = request(&key(), fp, owner, now, OnExpired::TakeOver);
    store.claim(req).await.unwrap()
}

async fn state<S: Store>(store: &S) -> Option<(u64, RecordState)> {
    let record = store.read(&key()).await.unwrap()?;
    Some((record.fence.0, record.state))
}

/// Absent → in progress with fence 1, the claimant as owner and the requested lease.
pub async fn absent_claim_acquires_fence_one<S: Store>(store: S) {
    assert_eq!(state(&store).await, None);
    let outcome = claim(&store, "a", 1, T0).await;
    let acquired = ClaimOutcome::Acquired {
        token: token(1, 1),
        took_over: None,
    };
    assert_eq!(outcome, acquired);
    let record = store.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.fingerprint, Fingerprint::new("a"));
    assert_eq!(record.expires_at, None);
    let lease_until = T0.plus(LEASE);
    let in_progress = RecordState::InProgress {
        owner: Owner(1),
        lease_until,
    };
    assert_eq!((record.fence, record.state), (Fence(1), in_progress));
}

/// A second claimant of a live lease learns who holds it until when, and changes nothing.
pub async fn live_claim_reports_the_holder<S: Store>(store: S) {
    acquire(&store, 1, T0).await;
    let later = Timestamp(T0.0 + 99);
    let outcome = claim(&store, "a", 2, later).await;
    let holder = token(1, 1);
    let lease_until = T0.plus(LEASE);
    assert_eq!(
        outcome,
        ClaimOutcome::InProgress {
            holder,
            lease_until
        }
    );
    let in_progress = RecordState::InProgress {
        owner: Owner(1),
        lease_until,
    };
    assert_eq!(state(&store).await, Some((1, in_progress)));
}

/// Completing stores the result; every later claim gets it back.
pub async fn completed_key_replays_its_result<S: Store>(store: S) {
    let holder = acquire(&store, 1, T0).await;
    let until = Timestamp(T0.0 + 10_000);
    let done = store.complete(&key(), holder, b"42".to_vec(), until).await;
    assert_eq!(done.unwrap(), Settle::Done);
    for owner in [2, 3] {
        let replay = ClaimOutcome::Completed {
            result: b"42".to_vec(),
        };
        assert_eq!(
            claim(&store, "a", owner, Timestamp(T0.0 + 500)).await,
            replay
        );
    }
    let record = store.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.expires_at, Some(until));
    let completed = RecordState::Completed {
        result: b"42".to_vec(),
    };
    assert_eq!((record.fence, record.state), (Fence(1), completed));
    let again = store.complete(&key(), holder, b"43".to_vec(), until).await;
    assert_eq!(again.unwrap(), Settle::Fenced, "a record completes once");
}

/// The same key with another fingerprint is a mismatch, in progress and completed alike.
pub async fn other_fingerprint_is_a_mismatch<S: Store>(store: S) {
    let holder = acquire(&store, 1, T0).await;
    assert_eq!(claim(&store, "b", 2, T0).await, ClaimOutcome::Mismatch);
    let until = Timestamp(T0.0 + 10_000);
    let done = store.complete(&key(), holder, b"1".to_vec(), until).await;
    assert_eq!(done.unwrap(), Settle::Done);
    assert_eq!(claim(&store, "b", 3, T0).await, ClaimOutcome::Mismatch);
}

/// Renewal moves the lease; a token that does not hold the key cannot renew.
pub async fn renewal_extends_the_lease_of_the_holder_only<S: Store>(store: S) {
    let holder = acquire(&store, 1, T0).await;
    let extended = Timestamp(T0.0 + 300);
    let renewed = store.renew(&key(), holder, extended).await;
    assert_eq!(renewed.unwrap(), Settle::Done);
    let at = Timestamp(T0.0 + 200); // past the first lease, inside the renewed one
    let outcome = claim(&store, "a", 2, at).await;
    let in_progress = ClaimOutcome::InProgress {
        holder,
        lease_until: extended,
    };
    assert_eq!(outcome, in_progress);
    for stranger in [token(2, 1), token(1, 2)] {
        let renewed = store.renew(&key(), stranger, Timestamp(T0.0 + 900)).await;
        assert_eq!(renewed.unwrap(), Settle::Fenced);
    }
}

/// An expired lease is taken over with fence + 1, reporting the previous holder; the old
/// holder's renew, complete and fail are then all fenced.
pub async fn expired_lease_is_taken_over_and_the_old_holder_fenced<S: Store>(store: S) {
    let old = acquire(&store, 1, T0).await;
    let expiry = T0.plus(LEASE);
    let outcome = claim(&store, "a", 2, expiry).await;
    let took_over = ClaimOutcome::Acquired {
        token: token(2, 2),
        took_over: Some(old),
    };
    assert_eq!(outcome, took_over);
    let until = Timestamp(T0.0 + 10_000);
    let renewed = store.renew(&key(), old, until).await.unwrap();
    let completed = store.complete(&key(), old, b"old".to_vec(), until).await;
    let failed = store.fail(&key(), old, b"e".to_vec(), true, until).await;
    assert_eq!(
        (renewed, completed.unwrap(), failed.unwrap()),
        (Settle::Fenced, Settle::Fenced, Settle::Fenced)
    );
    let done = store
        .complete(&key(), token(2, 2), b"new".to_vec(), until)
        .await;
    assert_eq!(done.unwrap(), Settle::Done);
    let completed = RecordState::Completed {
        result: b"new".to_vec(),
    };
    assert_eq!(state(&store).await, Some((2, completed)));
}

/// With [`OnExpired::MarkUnknown`], an expired attempt becomes unknown and stays so for every
/// such claim; a [`OnExpired::TakeOver`] claim then takes it over with fence + 1.
pub async fn expired_lease_is_marked_unknown_until_decided<S: Store>(store: S) {
    let old = acquire(&store, 1, T0).await;
    let expiry = T0.plus(LEASE);
    for owner in [2, 3] {
        let req = request(&key(), "a", owner, expiry, OnExpired::MarkUnknown);
        let unknown = ClaimOutcome::Unknown { previous: old };
        assert_eq!(store.claim(req).await.unwrap(), unknown);
    }
    let unknown = RecordState::Unknown { owner: Owner(1) };
    assert_eq!(state(&store).await, Some((1, unknown)));
    let outcome = claim(&store, "a", 4, expiry).await;
    let took_over = ClaimOutcome::Acquired {
        token: token(4, 2),
        took_over: Some(old),
    };
    assert_eq!(outcome, took_over);
    let late = store.complete(&key(), old, b"x".to_vec(), expiry).await;
    assert_eq!(late.unwrap(), Settle::Fenced);
}

/// An unknown attempt whose holder turns out alive is settled by its completion.
pub async fn unknown_attempt_settled_by_its_late_holder<S: Store>(store: S) {
    let old = acquire(&store, 1, T0).await;
    let req = request(&key(), "a", 2, T0.plus(LEASE), OnExpired::MarkUnknown);
    store.claim(req).await.unwrap();
    let until = Timestamp(T0.0 + 10_000);
    let done = store.complete(&key(), old, b"paid".to_vec(), until).await;
    assert_eq!(done.unwrap(), Settle::Done);
    let replay = ClaimOutcome::Completed {
        result: b"paid".to_vec(),
    };
    assert_eq!(claim(&store, "a", 3, T0.plus(LEASE)).await, replay);
}

/// A retryable failure frees the key: the next claim acquires it with the next fence.
pub async fn retryable_failure_frees_the_key<S: Store>(store: S) {
    let holder = acquire(&store, 1, T0).await;
    let failed = store.fail(&key(), holder, b"503".to_vec(), true, T0).await;
    assert_eq!(failed.unwrap(), Settle::Done);
    let outcome = claim(&store, "a", 2, Timestamp(T0.0 + 1)).await;
    let acquired = ClaimOutcome::Acquired {
        token: token(2, 2),
        took_over: None,
    };
    assert_eq!(outcome, acquired);
}

/// A permanent failure is stored and replayed.
pub async fn permanent_failure_is_replayed<S: Store>(store: S) {
    let holder = acquire(&store, 1, T0).await;
    let until = Timestamp(T0.0 + 10_000);
    let failed = store
        .fail(&key(), holder, b"400".to_vec(), false, until)
        .await;
    assert_eq!(failed.unwrap(), Settle::Done);
    let replay = ClaimOutcome::Failed {
        error: b"400".to_vec(),
    };
    assert_eq!(claim(&store, "a", 2, Timestamp(T0.0 + 1)).await, replay);
    let failed = RecordState::Failed {
        error: b"400".to_vec(),
        retryable: false,
    };
    assert_eq!(state(&store).await, Some((1, failed)));
}

/// Past its retention a finished record no longer answers claims, and purge removes exactly
/// the finished records past retention (never one in progress or unknown).
pub async fn retention_expiry_frees_the_key_and_purge_removes_it<S: Store>(store: S) {
    let holder = acquire(&store, 1, T0).await;
    let until = Timestamp(T0.0 + 1_000);
    let done = store.complete(&key(), holder, b"r".to_vec(), until).await;
    assert_eq!(done.unwrap(), Settle::Done);
    let running = Key::new("report", "user-2/2026-11-21");
    let lapsed = request(&running, "a", 7, T0, OnExpired::TakeOver);
    store.claim(lapsed).await.unwrap();
    let stale = Key::new("report", "user-3/2026-11-21");
    let req = request(&stale, "a", 8, T0, OnExpired::MarkUnknown);
    store.claim(req.clone()).await.unwrap();
    let marked = ClaimRequest {
        now: Timestamp(T0.0 + 500),
        ..req
    };
    assert!(matches!(
        store.claim(marked).await.unwrap(),
        ClaimOutcome::Unknown { .. }
    ));
    assert_eq!(store.purge(Timestamp(until.0 - 1)).await.unwrap(), 0);
    assert_eq!(store.purge(until).await.unwrap(), 1);
    assert_eq!(state(&store).await, None);
    assert!(store.read(&running).await.unwrap().is_some());
    assert!(store.read(&stale).await.unwrap().is_some());
    // An expired record that was not purged yet is free as well, with the next fence.
    let holder = acquire(&store, 2, until).await;
    let done = store.complete(&key(), holder, b"r".to_vec(), until).await;
    assert_eq!(done.unwrap(), Settle::Done);
    let outcome = claim(&store, "b", 3, until).await;
    let acquired = ClaimOutcome::Acquired {
        token: token(3, 2),
        took_over: None,
    };
    assert_eq!(
        outcome, acquired,
        "retention over: a new request may use the key"
    );
}

/// After a purge the fence starts again, so the owner check is what rejects an old holder.
pub async fn purged_then_reclaimed_key_fences_the_old_owner<S: Store>(store: S) {
    let old = acquire(&store, 1, T0).await;
    let done = store.fail(&key(), old, Vec::new(), true, T0).await;
    assert_eq!(done.unwrap(), Settle::Done);
    assert_eq!(store.purge(T0).await.unwrap(), 1);
    let new = acquire(&store, 2, T0).await;
    assert_eq!(new, token(2, 1));
    let late = store.complete(&key(), old, b"old".to_vec(), T0).await;
    assert_eq!(late.unwrap(), Settle::Fenced);
}

/// `("a:b", "c")` and `("a", "b:c")` are two keys; so is one key in two namespaces.
pub async fn keys_are_namespaced_not_concatenated<S: Store>(store: S) {
    let keys = [
        Key::new("a:b", "c"),
        Key::new("a", "b:c"),
        Key::new("x", "b:c"),
    ];
    for (owner, key) in (1..).zip(&keys) {
        let outcome = store
            .claim(request(key, "a", owner, T0, OnExpired::TakeOver))
            .await
            .unwrap();
        let acquired = ClaimOutcome::Acquired {
            token: token(owner, 1),
            took_over: None,
        };
        assert_eq!(outcome, acquired, "{key} is its own key");
    }
}
