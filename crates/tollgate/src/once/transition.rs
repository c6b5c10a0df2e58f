//! The record's state machine as pure functions: what every store writes for every operation.
//!
//! A store applies one of these to the current record inside one atomic step (a lock held for a
//! map operation, one `BEGIN IMMEDIATE` transaction, one Lua script), passing **its own** current
//! time as `now`, so the rules live in one place and every backend agrees on them. A backend
//! that cannot run Rust inside its atomic step (a PostgreSQL `INSERT … ON CONFLICT … DO UPDATE …
//! WHERE …`) encodes the same table, and the conformance suite checks that it does.

use std::time::Duration;

use super::record::{ClaimOutcome, ClaimRequest, OnExpired, Record, RecordState, Resolution};
use crate::store::{Fence, Owner, Timestamp, Token};

/// What a claim answers, and the record to store afterwards (`None`: leave it as it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimTransition {
    /// The answer to the claimant.
    pub outcome: ClaimOutcome,
    /// The record to write, if the claim changes it.
    pub write: Option<Record>,
}

/// Applies a claim made at the store's time `now` to the key's current record.
pub fn claim(existing: Option<&Record>, req: &ClaimRequest, now: Timestamp) -> ClaimTransition {
    let Some(record) = existing else {
        return acquire(req, now, Fence(1), None);
    };
    if let Some(waited) = waited_failure(record, req) {
        return answer(waited);
    }
    let expired = record.expires_at.is_some_and(|at| at <= now);
    let freed = matches!(
        record.state,
        RecordState::Failed {
            retryable: true,
            ..
        }
    );
    if expired || freed {
        return acquire(req, now, next(record.fence), None);
    }
    if record.fingerprint != req.fingerprint {
        return answer(ClaimOutcome::Mismatch);
    }
    match &record.state {
        RecordState::InProgress { owner, lease_until } if *lease_until > now => {
            answer(ClaimOutcome::InProgress {
                holder: Token {
                    owner: *owner,
                    fence: record.fence,
                },
                lease_until: *lease_until,
            })
        }
        RecordState::InProgress { owner, .. } | RecordState::Unknown { owner } => {
            lapsed(record, *owner, req, now)
        }
        RecordState::Completed { result } => answer(ClaimOutcome::Completed {
            result: result.clone(),
        }),
        RecordState::Failed { error, retryable } => answer(ClaimOutcome::Failed {
            error: error.clone(),
            retryable: *retryable,
        }),
    }
}

/// The failure of the attempt a waiting claimant waited for, if that attempt failed.
fn waited_failure(record: &Record, req: &ClaimRequest) -> Option<ClaimOutcome> {
    let waited = req.waiting_for?;
    match &record.state {
        RecordState::Failed { error, retryable }
            if record.fence == waited && record.fingerprint == req.fingerprint =>
        {
            Some(ClaimOutcome::Failed {
                error: error.clone(),
                retryable: *retryable,
            })
        }
        _ => None,
    }
}

/// A claim finding an attempt whose holder's lease ran out.
fn lapsed(record: &Record, owner: Owner, req: &ClaimRequest, now: Timestamp) -> ClaimTransition {
    let previous = Token {
        owner,
        fence: record.fence,
    };
    let take_over = match req.on_expired {
        OnExpired::TakeOver => true,
        OnExpired::MarkUnknown => false,
        OnExpired::TakeOverFrom(from) => from == previous,
    };
    if take_over {
        return acquire(req, now, next(record.fence), Some(previous));
    }
    ClaimTransition {
        outcome: ClaimOutcome::Unknown { previous },
        write: (!matches!(record.state, RecordState::Unknown { .. })).then(|| Record {
            state: RecordState::Unknown { owner },
            ..record.clone()
        }),
    }
}

fn acquire(
    req: &ClaimRequest,
    now: Timestamp,
    fence: Fence,
    took_over: Option<Token>,
) -> ClaimTransition {
    ClaimTransition {
        outcome: ClaimOutcome::Acquired {
            token: Token {
                owner: req.owner,
                fence,
            },
            took_over,
        },
        write: Some(Record {
            fingerprint: req.fingerprint.clone(),
            fence,
            state: RecordState::InProgress {
                owner: req.owner,
                lease_until: now.plus(req.lease),
            },
            expires_at: None,
        }),
    }
}

fn answer(outcome: ClaimOutcome) -> ClaimTransition {
    ClaimTransition {
        outcome,
        write: None,
    }
}

fn next(fence: Fence) -> Fence {
    Fence(fence.0.saturating_add(1))
}

/// The holder's record after it changes to `state`, or `None` when `token` no longer holds it
/// (the write is fenced). An expired lease that nobody took over still belongs to its holder.
fn settle(existing: Option<&Record>, token: Token, state: RecordState) -> Option<Record> {
    let record = existing?;
    (record.holder() == Some(token)).then(|| Record {
        state,
        ..record.clone()
    })
}

/// Extends the holder's lease to `lease` from `now`; `None` when the holder was fenced.
pub fn renew(
    existing: Option<&Record>,
    token: Token,
    lease: Duration,
    now: Timestamp,
) -> Option<Record> {
    let state = RecordState::InProgress {
        owner: token.owner,
        lease_until: now.plus(lease),
    };
    settle(existing, token, state)
}

/// Stores the holder's result, kept for `retention` from `now`; `None` when the holder was
/// fenced.
pub fn complete(
    existing: Option<&Record>,
    token: Token,
    result: Vec<u8>,
    retention: Duration,
    now: Timestamp,
) -> Option<Record> {
    let record = settle(existing, token, RecordState::Completed { result })?;
    Some(Record {
        expires_at: Some(now.plus(retention)),
        ..record
    })
}

/// Stores the holder's failure, kept for `retention` from `now`; `None` when the holder was
/// fenced.
pub fn fail(
    existing: Option<&Record>,
    token: Token,
    error: Vec<u8>,
    retryable: bool,
    retention: Duration,
    now: Timestamp,
) -> Option<Record> {
    let record = settle(existing, token, RecordState::Failed { error, retryable })?;
    Some(Record {
        expires_at: Some(now.plus(retention)),
        ..record
    })
}

/// Settles an attempt of unknown outcome — recorded as unknown, or in progress with a lease
/// that ran out at `now` — held by `previous`; `None` (fenced) for any other record, so a
/// live holder or a later claimant is never overwritten.
pub fn resolve(
    existing: Option<&Record>,
    previous: Token,
    resolution: Resolution,
    retention: Duration,
    now: Timestamp,
) -> Option<Record> {
    let record = existing?;
    let unknown = match record.state {
        RecordState::Unknown { .. } => true,
        RecordState::InProgress { lease_until, .. } => lease_until <= now,
        _ => false,
    };
    if !unknown {
        return None;
    }
    match resolution {
        Resolution::Completed { result } => complete(existing, previous, result, retention, now),
        Resolution::Failed { error, retryable } => {
            fail(existing, previous, error, retryable, retention, now)
        }
    }
}

/// Whether a purge at `now` removes the record: finished and past its retention.
pub fn is_purgeable(record: &Record, now: Timestamp) -> bool {
    record.expires_at.is_some_and(|at| at <= now)
}
