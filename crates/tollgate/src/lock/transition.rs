//! The lock's rules as pure functions: what every lock store writes for every operation.
//!
//! A store applies one of these to the key's current record inside one atomic step (a map
//! operation under a mutex, one `BEGIN IMMEDIATE` transaction), passing **its own** current
//! time as `now` and the lease as a duration, so every backend judges leases by the same rules
//! and the same clock.

use std::time::Duration;

use super::record::{Acquisition, LockRecord, LockState, Release};
use crate::store::{Fence, Owner, Timestamp, Token};

/// What an acquisition answers, and the record to store afterwards (`None`: leave it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcquireTransition {
    /// The answer to the caller.
    pub outcome: Acquisition,
    /// The record to write, if the acquisition changes it.
    pub write: Option<LockRecord>,
}

/// Applies an acquisition by `owner` for `lease` at the store's time `now`. The key is free
/// when it has no record, was released, or its holder's lease ended at or before `now`; the
/// new holder gets the next fence (1 for a key never locked).
pub fn acquire(
    existing: Option<&LockRecord>,
    owner: Owner,
    lease: Duration,
    now: Timestamp,
) -> AcquireTransition {
    let fence = match existing {
        None => Fence(1),
        Some(record) => match record.state {
            LockState::Held {
                owner: holder,
                lease_until,
            } if lease_until > now => {
                return AcquireTransition {
                    outcome: Acquisition::Held {
                        holder: Token {
                            owner: holder,
                            fence: record.fence,
                        },
                        lease_until,
                    },
                    write: None,
                };
            }
            _ => Fence(record.fence.0.saturating_add(1)),
        },
    };
    let lease_until = now.plus(lease);
    AcquireTransition {
        outcome: Acquisition::Acquired {
            token: Token { owner, fence },
            lease_until,
        },
        write: Some(LockRecord {
            fence,
            state: LockState::Held { owner, lease_until },
        }),
    }
}

/// Extends the holder's lease to `lease` from `now`; `None` (fenced) unless `token` holds the
/// record. A holder whose lease ran out but whom nobody replaced still holds it.
pub fn renew(
    existing: Option<&LockRecord>,
    token: Token,
    lease: Duration,
    now: Timestamp,
) -> Option<LockRecord> {
    let record = existing?;
    (record.holder() == Some(token)).then(|| LockRecord {
        fence: record.fence,
        state: LockState::Held {
            owner: token.owner,
            lease_until: now.plus(lease),
        },
    })
}

/// Releases the key if `token` holds it (owner **and** fence match), keeping the fence; the
/// record to write is `Some` only then.
pub fn release(existing: Option<&LockRecord>, token: Token) -> (Release, Option<LockRecord>) {
    match existing {
        Some(record) if record.holder() == Some(token) => (
            Release::Released,
            Some(LockRecord {
                fence: record.fence,
                state: LockState::Released,
            }),
        ),
        _ => (Release::NotHolder, None),
    }
}

/// Hands the key from its holder `from` straight to `to` for `lease` from `now`, with the next
/// fence: a release and an acquisition nobody can come between. `None` (nothing written)
/// unless `from` holds the record.
pub fn hand_over(
    existing: Option<&LockRecord>,
    from: Token,
    to: Owner,
    lease: Duration,
    now: Timestamp,
) -> Option<LockRecord> {
    let record = existing?;
    (record.holder() == Some(from)).then(|| LockRecord {
        fence: Fence(record.fence.0.saturating_add(1)),
        state: LockState::Held {
            owner: to,
            lease_until: now.plus(lease),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(100);

    fn token(owner: u128, fence: u64) -> Token {
        Token {
            owner: Owner(owner),
            fence: Fence(fence),
        }
    }

    #[test]
    fn a_lease_is_taken_over_exactly_at_its_end_with_the_next_fence() {
        let first = acquire(None, Owner(1), LEASE, Timestamp(0)).write;
        let held = acquire(first.as_ref(), Owner(2), LEASE, Timestamp(99));
        assert_eq!(
            held.outcome,
            Acquisition::Held {
                holder: token(1, 1),
                lease_until: Timestamp(100)
            }
        );
        let taken = acquire(first.as_ref(), Owner(2), LEASE, Timestamp(100));
        assert_eq!(
            taken.outcome,
            Acquisition::Acquired {
                token: token(2, 2),
                lease_until: Timestamp(200)
            }
        );
    }

    #[test]
    fn a_hand_over_moves_the_key_to_the_next_owner_with_the_next_fence() {
        let held = acquire(None, Owner(1), LEASE, Timestamp(0)).write;
        assert_eq!(
            hand_over(held.as_ref(), token(2, 1), Owner(3), LEASE, Timestamp(5)),
            None
        );
        let next = hand_over(held.as_ref(), token(1, 1), Owner(3), LEASE, Timestamp(5));
        assert_eq!(
            next.as_ref().and_then(LockRecord::holder),
            Some(token(3, 2))
        );
        assert_eq!(
            next.map(|r| r.state),
            Some(LockState::Held {
                owner: Owner(3),
                lease_until: Timestamp(105)
            })
        );
    }

    #[test]
    fn release_keeps_the_fence_and_rejects_anyone_but_the_holder() {
        let held = acquire(None, Owner(1), LEASE, Timestamp(0)).write;
        assert_eq!(
            release(held.as_ref(), token(2, 1)),
            (Release::NotHolder, None)
        );
        assert_eq!(release(held.as_ref(), token(1, 2)).0, Release::NotHolder);
        let (answer, released) = release(held.as_ref(), token(1, 1));
        assert_eq!(answer, Release::Released);
        let next = acquire(released.as_ref(), Owner(3), LEASE, Timestamp(1));
        assert_eq!(next.write.map(|r| r.fence), Some(Fence(2)));
        assert_eq!(
            renew(released.as_ref(), token(1, 1), LEASE, Timestamp(1)),
            None
        );
    }
}
