//! Store-level cases: one public function per semantic of a store, each on a fresh
//! [`Backend`]. [`conformance!`](crate::conformance) makes one test of each.

use std::time::Duration;

use tollgate::once::{
    ClaimOutcome, ClaimRequest, Fence, Fingerprint, Key, OnExpired, Owner, RecordState, Resolution,
    Settle, Store, Token,
};

use crate::backend::Backend;

/// The lease the cases claim with.
pub const LEASE: Duration = Duration::from_millis(100);
/// How long the cases keep finished records.
pub const RETENTION: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

/// The key most cases use.
pub fn key() -> Key {
    Key::new("report", "user-1/2026-11-21")
}

/// A claim of `key` with fingerprint `fp` by `owner`, leased for [`LEASE`].
pub fn request(key: &Key, fp: &str, owner: u128, on: OnExpired) -> ClaimRequest {
    ClaimRequest {
        key: key.clone(),
        fingerprint: Fingerprint::new(fp),
        owner: Owner(owner),
        lease: LEASE,
        on_expired: on,
        waiting_for: None,
    }
}

/// Claims [`key`] with fingerprint "a" and returns the acquired token.
pub async fn acquire<S: Store>(store: &S, owner: u128) -> Token {
    match claim(store, "a", owner).await {
        ClaimOutcome::Acquired { token, .. } => token,
        other => panic!("expected to acquire, got {other:?}"),
    }
}

/// The token of `owner` at `fence`.
pub fn token(owner: u128, fence: u64) -> Token {
    Token {
        owner: Owner(owner),
        fence: Fence(fence),
    }
}

async fn claim<S: Store>(store: &S, fp: &str, owner: u128) -> ClaimOutcome {
    let req = request(&key(), fp, owner, OnExpired::TakeOver);
    store.claim(req).await.unwrap()
}

async fn state<S: Store>(store: &S) -> Option<(u64, RecordState)> {
    let record = store.read(&key()).await.unwrap()?;
    Some((record.fence.0, record.state))
}

async fn lease_until<S: Store>(store: &S) -> tollgate::once::Timestamp {
    match store.read(&key()).await.unwrap().map(|r| r.state) {
        Some(RecordState::InProgress { lease_until, .. }) => lease_until,
        other => panic!("expected a record in progress, got {other:?}"),
    }
}

/// Absent → in progress with fence 1, the claimant as owner and no retention yet.
pub async fn absent_claim_acquires_fence_one<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    assert_eq!(state(&store).await, None);
    let acquired = ClaimOutcome::Acquired {
        token: token(1, 1),
        took_over: None,
    };
    assert_eq!(claim(&store, "a", 1).await, acquired);
    let record = store.read(&key()).await.unwrap().unwrap();
    assert_eq!(record.fingerprint, Fingerprint::new("a"));
    assert_eq!(record.expires_at, None);
    assert_eq!(record.fence, Fence(1));
    assert!(matches!(
        record.state,
        RecordState::InProgress {
            owner: Owner(1),
            ..
        }
    ));
}

/// A second claimant of a live lease learns who holds it until when, and changes nothing.
pub async fn live_claim_reports_the_holder<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    acquire(&store, 1).await;
    let until = lease_until(&store).await;
    backend.advance(LEASE - MS).await;
    let outcome = claim(&store, "a", 2).await;
    let live = ClaimOutcome::InProgress {
        holder: token(1, 1),
        lease_until: until,
    };
    assert_eq!(outcome, live);
    assert_eq!(
        lease_until(&store).await,
        until,
        "the claim changed nothing"
    );
}

/// A lease runs out exactly when the store's clock reaches it: 1 ms before, the holder still
/// holds the key; at the instant, the next claim takes it over with fence + 1.
pub async fn lease_expires_exactly_on_the_store_clock<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let old = acquire(&store, 1).await;
    backend.advance(LEASE - MS).await;
    assert!(matches!(
        claim(&store, "a", 2).await,
        ClaimOutcome::InProgress { .. }
    ));
    backend.advance(MS).await;
    let took_over = ClaimOutcome::Acquired {
        token: token(3, 2),
        took_over: Some(old),
    };
    assert_eq!(claim(&store, "a", 3).await, took_over);
}

/// Completing stores the result; every later claim gets it back.
pub async fn completed_key_replays_its_result<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquire(&store, 1).await;
    let done = store
        .complete(&key(), holder, b"42".to_vec(), RETENTION)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    backend.advance(RETENTION - MS).await;
    for owner in [2, 3] {
        let replay = ClaimOutcome::Completed {
            result: b"42".to_vec(),
        };
        assert_eq!(claim(&store, "a", owner).await, replay);
    }
    let record = store.read(&key()).await.unwrap().unwrap();
    assert!(record.expires_at.is_some());
    let completed = RecordState::Completed {
        result: b"42".to_vec(),
    };
    assert_eq!((record.fence, record.state), (Fence(1), completed));
    let again = store
        .complete(&key(), holder, b"43".to_vec(), RETENTION)
        .await;
    assert_eq!(again.unwrap(), Settle::Fenced, "a record completes once");
}

/// The same key with another fingerprint is a mismatch, in progress and completed alike.
pub async fn other_fingerprint_is_a_mismatch<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquire(&store, 1).await;
    assert_eq!(claim(&store, "b", 2).await, ClaimOutcome::Mismatch);
    let done = store
        .complete(&key(), holder, b"1".to_vec(), RETENTION)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    assert_eq!(claim(&store, "b", 3).await, ClaimOutcome::Mismatch);
}

/// Renewal moves the lease to a full lease from the store's now; a token that does not hold
/// the key cannot renew.
pub async fn renewal_extends_the_lease_of_the_holder_only<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquire(&store, 1).await;
    backend.advance(LEASE / 2).await;
    let renewed = store.renew(&key(), holder, LEASE).await;
    assert_eq!(renewed.unwrap(), Settle::Accepted);
    backend.advance(LEASE - MS).await; // past the first lease, inside the renewed one
    assert!(matches!(
        claim(&store, "a", 2).await,
        ClaimOutcome::InProgress { holder: h, .. } if h == holder
    ));
    for stranger in [token(2, 1), token(1, 2)] {
        let renewed = store.renew(&key(), stranger, LEASE).await;
        assert_eq!(renewed.unwrap(), Settle::Fenced);
    }
    backend.advance(MS).await;
    assert!(matches!(
        claim(&store, "a", 3).await,
        ClaimOutcome::Acquired { .. }
    ));
}

/// An expired lease is taken over with fence + 1, reporting the previous holder; the old
/// holder's renew, complete and fail are then all fenced.
pub async fn expired_lease_is_taken_over_and_the_old_holder_fenced<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let old = acquire(&store, 1).await;
    backend.advance(LEASE).await;
    let took_over = ClaimOutcome::Acquired {
        token: token(2, 2),
        took_over: Some(old),
    };
    assert_eq!(claim(&store, "a", 2).await, took_over);
    let renewed = store.renew(&key(), old, LEASE).await.unwrap();
    let completed = store
        .complete(&key(), old, b"old".to_vec(), RETENTION)
        .await;
    let failed = store
        .fail(&key(), old, b"e".to_vec(), true, RETENTION)
        .await;
    assert_eq!(
        (renewed, completed.unwrap(), failed.unwrap()),
        (Settle::Fenced, Settle::Fenced, Settle::Fenced)
    );
    let new = token(2, 2);
    let done = store
        .complete(&key(), new, b"new".to_vec(), RETENTION)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    let completed = RecordState::Completed {
        result: b"new".to_vec(),
    };
    assert_eq!(state(&store).await, Some((2, completed)));
}

/// With [`OnExpired::MarkUnknown`], an expired attempt becomes unknown and stays so for every
/// such claim; a [`OnExpired::TakeOver`] claim then takes it over with fence + 1.
pub async fn expired_lease_is_marked_unknown_until_decided<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let old = acquire(&store, 1).await;
    backend.advance(LEASE).await;
    for owner in [2, 3] {
        let req = request(&key(), "a", owner, OnExpired::MarkUnknown);
        let unknown = ClaimOutcome::Unknown { previous: old };
        assert_eq!(store.claim(req).await.unwrap(), unknown);
    }
    let unknown = RecordState::Unknown { owner: Owner(1) };
    assert_eq!(state(&store).await, Some((1, unknown)));
    let took_over = ClaimOutcome::Acquired {
        token: token(4, 2),
        took_over: Some(old),
    };
    assert_eq!(claim(&store, "a", 4).await, took_over);
    let late = store.complete(&key(), old, b"x".to_vec(), RETENTION).await;
    assert_eq!(late.unwrap(), Settle::Fenced);
}

/// [`OnExpired::TakeOverFrom`] takes over only from the named holder: any other lapsed
/// holder is marked unknown instead.
pub async fn take_over_from_takes_over_only_that_holder<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let old = acquire(&store, 1).await;
    backend.advance(LEASE).await;
    let someone_else = OnExpired::TakeOverFrom(token(9, 1));
    let req = request(&key(), "a", 2, someone_else);
    let unknown = ClaimOutcome::Unknown { previous: old };
    assert_eq!(store.claim(req).await.unwrap(), unknown);
    let req = request(&key(), "a", 3, OnExpired::TakeOverFrom(old));
    let took_over = ClaimOutcome::Acquired {
        token: token(3, 2),
        took_over: Some(old),
    };
    assert_eq!(store.claim(req).await.unwrap(), took_over);
}

/// An unknown attempt whose holder turns out alive is settled by its completion.
pub async fn unknown_attempt_settled_by_its_late_holder<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let old = acquire(&store, 1).await;
    backend.advance(LEASE).await;
    let req = request(&key(), "a", 2, OnExpired::MarkUnknown);
    store.claim(req).await.unwrap();
    let done = store
        .complete(&key(), old, b"paid".to_vec(), RETENTION)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    let replay = ClaimOutcome::Completed {
        result: b"paid".to_vec(),
    };
    assert_eq!(claim(&store, "a", 3).await, replay);
}

/// `resolve` settles only an attempt of unknown outcome held by the given token: never a live
/// holder, never with another token; a lapsed lease not yet marked unknown counts as unknown.
pub async fn resolve_settles_only_an_unknown_attempt<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let old = acquire(&store, 1).await;
    let paid = || Resolution::Completed {
        result: b"paid".to_vec(),
    };
    let live = store.resolve(&key(), old, paid(), RETENTION).await;
    assert_eq!(
        live.unwrap(),
        Settle::Fenced,
        "a live holder is never overwritten"
    );
    backend.advance(LEASE).await;
    let wrong = store.resolve(&key(), token(1, 2), paid(), RETENTION).await;
    assert_eq!(wrong.unwrap(), Settle::Fenced);
    let lapsed = store.resolve(&key(), old, paid(), RETENTION).await;
    assert_eq!(lapsed.unwrap(), Settle::Accepted);
    let replay = ClaimOutcome::Completed {
        result: b"paid".to_vec(),
    };
    assert_eq!(claim(&store, "a", 2).await, replay);
    let twice = store.resolve(&key(), old, paid(), RETENTION).await;
    assert_eq!(
        twice.unwrap(),
        Settle::Fenced,
        "a settled key is settled once"
    );
}

/// "Hold it" and "keep it" spelled `Duration::MAX`: a lease and a retention that long are
/// accepted and kept (a backend cuts them to the longest it stores), not refused as out of
/// range: a year later the holder still holds the key, and a year after its completion the
/// result is still replayed.
pub async fn unbounded_lease_and_retention_are_kept<B: Backend>(backend: &B) {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let store = backend.connect().await;
    let forever = ClaimRequest {
        lease: Duration::MAX,
        ..request(&key(), "a", 1, OnExpired::TakeOver)
    };
    let holder = match store.claim(forever).await.unwrap() {
        ClaimOutcome::Acquired { token, .. } => token,
        other => panic!("expected to acquire, got {other:?}"),
    };
    backend.advance(YEAR).await;
    let held = claim(&store, "a", 2).await;
    assert!(matches!(held, ClaimOutcome::InProgress { .. }), "{held:?}");
    let renewed = store.renew(&key(), holder, Duration::MAX).await;
    assert_eq!(renewed.unwrap(), Settle::Accepted);
    let done = store
        .complete(&key(), holder, b"kept".to_vec(), Duration::MAX)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    backend.advance(YEAR).await;
    let replay = ClaimOutcome::Completed {
        result: b"kept".to_vec(),
    };
    assert_eq!(claim(&store, "a", 3).await, replay);
}

/// A retryable failure frees the key: the next claim acquires it with the next fence.
pub async fn retryable_failure_frees_the_key<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquire(&store, 1).await;
    let failed = store
        .fail(&key(), holder, b"503".to_vec(), true, Duration::ZERO)
        .await;
    assert_eq!(failed.unwrap(), Settle::Accepted);
    let acquired = ClaimOutcome::Acquired {
        token: token(2, 2),
        took_over: None,
    };
    assert_eq!(claim(&store, "a", 2).await, acquired);
}

/// A claimant that waited for an attempt receives that attempt's failure — even a retryable
/// one, which frees the key for everybody else — instead of running the work itself.
pub async fn waiter_receives_the_failure_it_waited_for<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquire(&store, 1).await;
    let failed = store
        .fail(&key(), holder, b"503".to_vec(), true, Duration::ZERO)
        .await;
    assert_eq!(failed.unwrap(), Settle::Accepted);
    let waiter = ClaimRequest {
        waiting_for: Some(holder.fence),
        ..request(&key(), "a", 2, OnExpired::TakeOver)
    };
    let its_failure = ClaimOutcome::Failed {
        error: b"503".to_vec(),
        retryable: true,
    };
    assert_eq!(store.claim(waiter.clone()).await.unwrap(), its_failure);
    let newcomer = request(&key(), "a", 3, OnExpired::TakeOver);
    let outcome = store.claim(newcomer).await.unwrap();
    assert!(matches!(outcome, ClaimOutcome::Acquired { token: t, .. } if t == token(3, 2)));
    let stale = store.claim(waiter).await.unwrap();
    assert!(
        matches!(stale, ClaimOutcome::InProgress { .. }),
        "a later attempt is not the one waited for"
    );
}

/// A permanent failure is stored and replayed.
pub async fn permanent_failure_is_replayed<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquire(&store, 1).await;
    let failed = store
        .fail(&key(), holder, b"400".to_vec(), false, RETENTION)
        .await;
    assert_eq!(failed.unwrap(), Settle::Accepted);
    let replay = ClaimOutcome::Failed {
        error: b"400".to_vec(),
        retryable: false,
    };
    assert_eq!(claim(&store, "a", 2).await, replay);
    let failed = RecordState::Failed {
        error: b"400".to_vec(),
        retryable: false,
    };
    assert_eq!(state(&store).await, Some((1, failed)));
}

/// Past its retention (on the store's clock) a finished record no longer answers claims, and
/// purge removes exactly the finished records past retention (never one in progress or
/// unknown).
pub async fn retention_expiry_frees_the_key_and_purge_removes_it<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let holder = acquire(&store, 1).await;
    let done = store
        .complete(&key(), holder, b"r".to_vec(), RETENTION)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    let running = Key::new("report", "user-2/2026-11-21");
    store
        .claim(request(&running, "a", 7, OnExpired::TakeOver))
        .await
        .unwrap();
    let stale = Key::new("report", "user-3/2026-11-21");
    let req = request(&stale, "a", 8, OnExpired::MarkUnknown);
    store.claim(req.clone()).await.unwrap();
    backend.advance(LEASE).await;
    let marked = store.claim(req).await.unwrap();
    assert!(matches!(marked, ClaimOutcome::Unknown { .. }));
    backend.advance(RETENTION - LEASE - MS).await;
    assert_eq!(store.purge().await.unwrap(), 0);
    backend.advance(MS).await;
    assert_eq!(store.purge().await.unwrap(), 1);
    assert_eq!(state(&store).await, None);
    assert!(store.read(&running).await.unwrap().is_some());
    assert!(store.read(&stale).await.unwrap().is_some());
    // An expired record that was not purged yet is free as well, with the next fence.
    let holder = acquire(&store, 2).await;
    let done = store
        .complete(&key(), holder, b"r".to_vec(), RETENTION)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    backend.advance(RETENTION).await;
    let acquired = ClaimOutcome::Acquired {
        token: token(3, 2),
        took_over: None,
    };
    let outcome = claim(&store, "b", 3).await;
    assert_eq!(
        outcome, acquired,
        "retention over: a new request may use the key"
    );
}

/// After a purge the fence starts again, so the owner check is what rejects an old holder.
pub async fn purged_then_reclaimed_key_fences_the_old_owner<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let old = acquire(&store, 1).await;
    let done = store
        .fail(&key(), old, Vec::new(), true, Duration::ZERO)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    assert_eq!(store.purge().await.unwrap(), 1);
    let new = acquire(&store, 2).await;
    assert_eq!(new, token(2, 1));
    let late = store
        .complete(&key(), old, b"old".to_vec(), RETENTION)
        .await;
    assert_eq!(late.unwrap(), Settle::Fenced);
}

/// A key of 2,500 four-byte characters (10,000 bytes) is claimed, completed and replayed like
/// any other: no backend refuses it on the way (a notification carrying the whole key would
/// be over PostgreSQL's 8,000-byte limit).
pub async fn a_long_key_of_wide_characters_is_completed_and_replayed<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let long = Key::new("report", "\u{1F600}".repeat(2_500));
    let holder = match store
        .claim(request(&long, "a", 1, OnExpired::TakeOver))
        .await
    {
        Ok(ClaimOutcome::Acquired { token, .. }) => token,
        other => panic!("expected to acquire, got {other:?}"),
    };
    let done = store
        .complete(&long, holder, b"wide".to_vec(), RETENTION)
        .await;
    assert_eq!(done.unwrap(), Settle::Accepted);
    let replay = store
        .claim(request(&long, "a", 2, OnExpired::TakeOver))
        .await;
    let wide = ClaimOutcome::Completed {
        result: b"wide".to_vec(),
    };
    assert_eq!(replay.unwrap(), wide);
}

/// `("a:b", "c")` and `("a", "b:c")` are two keys; so is one key in two namespaces.
pub async fn keys_are_namespaced_not_concatenated<B: Backend>(backend: &B) {
    let store = backend.connect().await;
    let keys = [
        Key::new("a:b", "c"),
        Key::new("a", "b:c"),
        Key::new("x", "b:c"),
    ];
    for (owner, key) in (1..).zip(&keys) {
        let req = request(key, "a", owner, OnExpired::TakeOver);
        let acquired = ClaimOutcome::Acquired {
            token: token(owner, 1),
            took_over: None,
        };
        assert_eq!(
            store.claim(req).await.unwrap(),
            acquired,
            "{key} is its own key"
        );
    }
}
